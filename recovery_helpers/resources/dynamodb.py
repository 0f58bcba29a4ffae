"""DynamoDB facts several steps read: the point-in-time recovery window of a table; waiting for a table."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ..aws import Aws, explain
from ..aws import describe_table as _describe
from ..errors import NotReadyError, RecoveryError
from ..progress import progress_bar

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


def wait_until_active(
    aws: Aws,
    table_name: str,
    *,
    poll_seconds: float = 15.0,
    timeout_seconds: float | None = None,
    progress: bool = True,
    on_status: Callable[[str, float], None] | None = None,
    appear_grace_seconds: float = 60.0,
) -> tuple[dict[str, Any], float]:
    """Poll DescribeTable until ACTIVE, however long it takes (or ``timeout_seconds``): (table, elapsed).

    Shows the status and the elapsed time (tqdm). Raises NotReadyError on timeout, RecoveryError if the table
    is missing after ``appear_grace_seconds`` (DescribeTable is eventually consistent just after the restore
    starts) or disappears later (the restore failed).
    """
    started = time.monotonic()
    last = None
    bar = progress_bar(
        total=None, bar_format="{desc} [{elapsed}]", desc=f"{table_name}: ...", disable=not progress
    )
    try:
        while True:
            table = _describe(aws, table_name)
            elapsed = time.monotonic() - started
            if table is None and last is None and elapsed < appear_grace_seconds:
                if timeout_seconds is not None and elapsed >= timeout_seconds:
                    raise NotReadyError(
                        f"{table_name} is not visible yet after {elapsed:.0f}s: run this step "
                        "again to keep waiting."
                    )
                _pause(poll_seconds, timeout_seconds, elapsed)
                continue
            if table is None:
                raise RecoveryError(
                    f"table {table_name} disappeared while being restored: the restore failed. "
                    "Check the DynamoDB console/CloudTrail, then run this step again."
                )
            status = table["TableStatus"]
            if status != last:
                last = status
                if on_status:
                    on_status(status, elapsed)
            bar.set_description_str(f"{table_name}: {status}", refresh=True)
            if status == "ACTIVE":
                return table, elapsed
            if status not in ("CREATING", "UPDATING"):
                raise RecoveryError(
                    f"table {table_name} is {status}, not being restored: check it in the console."
                )
            if timeout_seconds is not None and elapsed >= timeout_seconds:
                raise NotReadyError(
                    f"{table_name} is still {status} after {elapsed:.0f}s: run this step again to "
                    "keep waiting (it resumes; it does not start another restore)."
                )
            _pause(poll_seconds, timeout_seconds, elapsed)
    finally:
        bar.close()


def _pause(poll_seconds: float, timeout_seconds: float | None, elapsed: float) -> None:
    """Sleep one poll interval, never past the timeout."""
    pause = poll_seconds if timeout_seconds is None else min(poll_seconds, timeout_seconds - elapsed)
    time.sleep(max(pause, 0.0))
