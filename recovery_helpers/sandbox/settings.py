"""Sandbox settings: where the embedded AWS deliberately differs from AWS, and AWS's real value."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class SandboxSettings:
    """Knobs of the embedded AWS. Defaults keep tests and the demo fast; AWS's values are in the comments.

    Every field can be changed on a running sandbox (``sb.configure(...)``), in-process or over HTTP
    (``POST /_sandbox/settings``).
    """

    #: Seconds a restored table (PITR or backup) stays CREATING. AWS: minutes to hours, no SLA.
    restore_seconds: float = 0.0
    #: Seconds an export stays IN_PROGRESS. AWS: minutes, longer for big tables.
    export_seconds: float = 0.0
    #: LatestRestorableDateTime = now - this lag. AWS: about 300 seconds.
    pitr_lag_seconds: float = 0.0
    #: Shortest INCREMENTAL_EXPORT window. AWS: 900 seconds (15 minutes); longest is 24 hours on AWS and here.
    export_min_window_seconds: float = 900.0
    #: Items per gzipped data file of an export (AWS splits by size, into many files for any sizable table);
    #: small here so that even a demo table's export spreads over several files, as readers must expect.
    export_items_per_file: int = 100
    #: Added round-trip latency per request, in milliseconds. AWS: ~2-10 ms in-region, 20-100 ms from a laptop.
    latency_ms: float = 0.0
    #: Fraction of DynamoDB data-plane requests answered with ProvisionedThroughputExceededException.
    throttle_rate: float = 0.0
    #: Fraction of requests answered with HTTP 500 InternalServerError.
    error_rate: float = 0.0
    #: Fraction of requests whose connection is dropped without an answer.
    drop_rate: float = 0.0
    #: Inject faults into these operations only: DynamoDB/JSON operation names ("PutItem", "DescribeTable",
    #: "DescribeExport", "FilterLogEvents"...) or "S3:GET"/"S3:PUT"; empty means every DynamoDB item call.
    fault_operations: list[str] = dataclasses.field(default_factory=list)
    #: Seed of the fault injector, so a faulty run can be replayed exactly.
    fault_seed: int = 0
    #: How long a TransactWriteItems ClientRequestToken is remembered after its transaction completed (sandbox
    #: clock). AWS: 600 seconds (10 minutes).
    idempotency_window_seconds: float = 600.0

    #: Set when fault_seed is (re)assigned, so the same seed replays the same faults from the start.
    reseeded: bool = dataclasses.field(default=False, repr=False, compare=False)

    def update(self, **changes: object) -> None:
        """Change settings by name, refusing unknown names. Setting fault_seed restarts the fault sequence."""
        names = {f.name for f in dataclasses.fields(self)} - {"reseeded"}
        unknown = set(changes) - names
        if unknown:
            raise TypeError(f"unknown sandbox settings {sorted(unknown)}; known: {sorted(names)}")
        for name, value in changes.items():
            setattr(self, name, value)
        if "fault_seed" in changes:
            self.reseeded = True

    def as_dict(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out.pop("reseeded")
        return out
