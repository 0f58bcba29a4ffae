"""What the patch engine's parts share: its tuning constants, its client, and how it reads an SDK failure."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from ..aws import Aws, error_code
from ..errors import RecoveryError
from .fast_json import use_fast_json

#: How often one call is tried again after throttling that outlived botocore's own retries.
THROTTLE_ROUNDS = 8
#: How often a transaction whose answer was lost (after botocore's own retries) is sent again with its token.
LOST_ANSWER_ROUNDS = 2
#: Ask PutItem/DeleteItem for the replaced item (ReturnValues=ALL_OLD; free on AWS) to catch an attribute
#: added between the read and the write, which no condition expression can rule out (benchmarks may turn it
#: off).
RETURN_OLD = True
#: Keys per consistent BatchGetItem before the writes (at most 100). Each worker holds at most three such
#: units (being filled, queued, being written): memory is bounded by max_workers x 3 x unit entries.
READ_BATCH = 25
#: Keys per TransactWriteItems in the transactional write modes (DynamoDB allows up to 100). 50 measured 10-15 %
#: faster than 25 (fewer calls, less fixed cost per call) and cancels half as many items as 100 would when
#: one item conflicts (bench/README.md).
TRANSACT_BATCH = 50
#: The write mode apply_plan and undo use unless told otherwise (chosen by bench/patch.py; see bench/README.md).
DEFAULT_WRITE_MODE = "auto"
#: write_mode="auto" turns to single writes for the rest of the run once more than a quarter of at least this
#: many transactions were cancelled (contention: every cancellation costs a call and then single writes).
AUTO_MIN_TRANSACTIONS = 8


def engine_client(aws: Aws) -> Any:
    """The DynamoDB client the engine reads and writes with: the context's (same session, endpoint, retries,
    call recording), without botocore's client-side parameter validation, which cost a quarter of the
    engine's CPU; the engine builds every request itself and DynamoDB validates each one anyway. Its
    BatchGetItem answers and TransactWriteItems requests are plain JSON (``fast_json``)."""
    client = aws.with_config(Config(parameter_validation=False)).dynamodb
    use_fast_json(client)
    return client


@dataclass(frozen=True)
class EngineTuning:
    """Knobs for benchmarks and profiling; the defaults are what the runbook uses."""

    #: ReturnValues=ALL_OLD on PutItem/DeleteItem (see RETURN_OLD).
    return_old: bool = RETURN_OLD
    #: Each worker thread runs inside ``worker_context()`` (bench/patch.py profiles the workers with it).
    worker_context: Callable[[], contextlib.AbstractContextManager[Any]] | None = None


#: Error codes that do not say whether a write was applied.
UNKNOWN_OUTCOME_CODES = frozenset(
    {"InternalServerError", "InternalFailure", "ServiceUnavailable", "TransactionInProgressException"}
)


@dataclass
class SendOutcome:
    """What became of one transaction: written, cancelled (nothing written), refused (a definite 4xx),
    mismatch (its token was used with another request), unknown (it may or may not have run)."""

    kind: str
    share: float = 0.0  # capacity units per item when written
    reasons: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _never_sent(exc: BaseException) -> bool:
    """A failure before the request left this machine (no connection was made): the write did not happen."""
    return isinstance(exc, (EndpointConnectionError, ConnectTimeoutError))


def _code(exc: BaseException) -> str | None:
    return error_code(exc) or getattr(exc, "cause_response_code", None)


class Fatal(Exception):
    """Stops every worker: an answer no retry will change (permissions, missing table)."""

    def __init__(self, error: RecoveryError) -> None:
        super().__init__(str(error))
        self.error = error
