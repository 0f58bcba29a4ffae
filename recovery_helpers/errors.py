"""One exception per failure a user can act on; each message says what to do next."""

from __future__ import annotations

from typing import Any


class RecoveryError(Exception):
    """Base of every error the runbook raises on purpose. ``str(err)`` is the sentence to show the user."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause

    @property
    def cause_response_code(self) -> str | None:
        """The AWS error code behind this error, if it wraps a botocore ClientError."""
        return getattr(self.cause, "response", {}).get("Error", {}).get("Code")


class InputError(RecoveryError):
    """A parameter or input file is wrong; nothing was written."""


class NotReadyError(RecoveryError):
    """AWS is not in the state this step needs (PITR off, table CREATING, missing resources)."""


class PermissionDeniedError(RecoveryError):
    """AWS refused an action; the message names the action and the identity."""


class VerificationError(RecoveryError):
    """A step did what it was asked but the check afterwards does not hold (e.g. the Deny is not effective).

    ``report``: the step's report (what was done, what the check found), for the notebook to show.
    """

    def __init__(self, message: str, *, report: Any = None, cause: BaseException | None = None) -> None:
        super().__init__(message, cause=cause)
        self.report = report


class ApprovalError(RecoveryError):
    """The plan is not approved, or approved by the wrong person, or the token is for another plan."""
