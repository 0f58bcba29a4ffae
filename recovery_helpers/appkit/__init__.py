"""The application-side kit: what an application runs so that an incident can be recovered from later.

- :class:`ReadOnlyGuard` answers "is this tenant read-only right now?" from an SSM parameter (cached).
- :class:`ChangeLogger` writes the structured change log (one JSON line per item change) that the
  ``log_file`` and ``cloudwatch_logs`` sources read.
- :mod:`recovery_helpers.appkit.streams_handler` is a Lambda handler that turns DynamoDB Streams records into
  audit-table items for the ``audit_table`` source.

Everything here imports only boto3 and the standard library (plus the package's own boto3-only modules), so an
application or a Lambda function can use it without Jupyter, pandas or papermill.
"""

from __future__ import annotations

from .change_logger import ChangeLogger, change_record
from .guard import ReadOnlyGuard

__all__ = ["ChangeLogger", "ReadOnlyGuard", "change_record"]
