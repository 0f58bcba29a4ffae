"""DynamoDB facts several steps read: the point-in-time recovery window of a table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.exceptions import ClientError

from ..aws import Aws, explain

#: DynamoDB's PITR period when DescribeContinuousBackups does not name one.
DEFAULT_PERIOD_DAYS = 35


def iso(value: Any) -> str | None:
    """A datetime as ISO 8601 in UTC; anything else (None, a string) as it is."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return value


def pitr_window(aws: Aws, table_name: str) -> dict[str, Any]:
    """``{"enabled", "earliest", "latest", "period_days"}`` from DescribeContinuousBackups."""
    try:
        desc = aws.dynamodb.describe_continuous_backups(TableName=table_name)["ContinuousBackupsDescription"]
    except ClientError as exc:
        raise explain(exc, "dynamodb:DescribeContinuousBackups", table_name) from exc
    p = desc.get("PointInTimeRecoveryDescription") or {}
    return {
        "enabled": p.get("PointInTimeRecoveryStatus") == "ENABLED",
        "earliest": p.get("EarliestRestorableDateTime"),
        "latest": p.get("LatestRestorableDateTime"),
        "period_days": p.get("RecoveryPeriodInDays")
        or (DEFAULT_PERIOD_DAYS if p.get("PointInTimeRecoveryStatus") == "ENABLED" else None),
    }
