"""What every step starts from: AWS clients, the incident record and the live table's name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .aws import Aws
from .errors import InputError
from .incident import Incident


@dataclass
class Context:
    """Passed to every step function; notebooks build it once from their parameters."""

    aws: Aws
    incident: Incident
    table_name: str

    @property
    def who(self) -> str:
        return self.aws.caller_arn

    def record(self, action: str, result: str = "ok", **details: Any) -> dict[str, Any]:
        """Add an event to the incident timeline as the current caller."""
        return self.incident.record(action, who=self.who, result=result, **details)


def open_context(
    incident_id: str = "demo",
    table_name: str | None = None,
    region: str = "us-east-1",
    endpoint_url: str | None = None,
    runs_dir: str = "runs",
    *,
    aws: Aws | None = None,
) -> Context:
    """Validate the parameters every notebook takes and open the incident's run folder."""
    if not table_name or not isinstance(table_name, str):
        raise InputError("table_name is required: the name of the live DynamoDB table to recover.")
    if not region or not isinstance(region, str):
        raise InputError("region is required, e.g. 'us-east-1'.")
    aws = aws or Aws(region=region, endpoint_url=endpoint_url or None)
    incident = Incident(incident_id, runs_dir)
    if incident.get("table_name") not in (None, table_name):
        raise InputError(
            f"incident {incident_id!r} is about table {incident.get('table_name')!r}, not {table_name!r}: "
            "use another incident_id or the same table_name."
        )
    incident.update(table_name=table_name, region=region)
    return Context(aws=aws, incident=incident, table_name=table_name)
