"""What every step starts from: AWS clients, the incident record and the live table's name."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aws import Aws, is_control_change, validate_region
from .errors import InputError
from .incident import FILE_NAME, Incident, utc_now, validate_incident_id


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
    step: str | None = None,
) -> Context:
    """Validate the parameters every notebook takes and open the incident's run folder.

    ``step`` names the runbook step opening it: every step after ``prepare`` needs the run folder that
    01_prepare started, so a mistyped ``incident_id`` (or a ``runs_dir`` read from another directory) is
    refused instead of silently starting an empty incident.
    """
    if not table_name or not isinstance(table_name, str):
        raise InputError("table_name is required: the name of the live DynamoDB table to recover.")
    validate_region(region)
    if step is not None and step != "prepare":
        require_run_folder(incident_id, runs_dir, step)
    incident = Incident(incident_id, runs_dir)
    recorder = CallRecorder(incident)
    if aws is None:
        aws = Aws(region=region, endpoint_url=endpoint_url or None, recorder=recorder)
    else:
        aws.set_recorder(recorder)
    if incident.get("table_name") not in (None, table_name):
        raise InputError(
            f"incident {incident_id!r} is about table {incident.get('table_name')!r}, not {table_name!r}: "
            "use another incident_id or the same table_name."
        )
    incident.update(table_name=table_name, region=region)
    _ = aws.caller_arn  # resolve the identity once: every recorded call names it
    return Context(aws=aws, incident=incident, table_name=table_name)


def require_run_folder(incident_id: str, runs_dir: str | os.PathLike[str], step: str) -> Path:
    """The run folder of an incident that 01_prepare has started; a clear refusal naming the path otherwise."""
    folder = Path(runs_dir).expanduser().resolve() / validate_incident_id(incident_id)
    if not (folder / FILE_NAME).is_file():
        others = sorted(p.parent.name for p in folder.parent.glob(f"*/{FILE_NAME}"))[:10]
        known = f" Incidents in {folder.parent}: {', '.join(others)}." if others else ""
        raise InputError(
            f"incident {incident_id!r} has no run folder yet (looked for {folder / FILE_NAME}), so {step} "
            "has nothing to continue: check incident_id and runs_dir, or start the incident with "
            f"01_prepare.{known}"
        )
    return folder


class CallRecorder:
    """Every AWS call: one line in ``aws-calls.jsonl`` (time, caller, operation, resource names, outcome), and
    per-caller counts of each operation in ``incident.json`` under ``aws_calls``. Resource changes are also
    recorded in the timeline by the steps themselves, with what they mean."""

    FILE = "aws-calls.jsonl"
    #: Calls made as another identity to test it (``"as": "probe"``: the application role's write probes,
    #: refused by design once writes are denied); kept apart, and not counted as the runbook's own calls.
    PROBE_FILE = "probe-calls.jsonl"
    SAVE_EVERY_SECONDS = 2.0

    def __init__(self, incident: Incident) -> None:
        self.incident = incident
        self.path = incident.file(self.FILE)
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], int] = {}
        self._saved_at = time.monotonic()
        incident.before_save.append(self._merge_counts)

    def __call__(self, event: dict[str, Any]) -> None:
        line = {"time": utc_now(), **event}
        if event.get("as") == "probe":
            with self._lock, self.incident.file(self.PROBE_FILE).open("a") as fh:
                fh.write(json.dumps(line, default=str) + "\n")
            return
        with self._lock:
            with self.path.open("a") as fh:
                fh.write(json.dumps(line, default=str) + "\n")
            key = (event["who"], f"{event['service']}:{event['operation']}", event["result"])
            self._pending[key] = self._pending.get(key, 0) + 1
            due = time.monotonic() - self._saved_at >= self.SAVE_EVERY_SECONDS
        if due or is_control_change(event["operation"]):
            self.incident.touch()

    def _merge_counts(self, data: dict[str, Any]) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._saved_at = time.monotonic()
        counts = {(c["who"], c["call"], c["result"]): c["count"] for c in data.get("aws_calls", [])}
        for key, n in pending.items():
            counts[key] = counts.get(key, 0) + n
        data["aws_calls"] = [
            {"who": w, "call": c, "result": r, "count": n} for (w, c, r), n in sorted(counts.items())
        ]
