"""Write probes: ask DynamoDB, as the application, whether each write path is open, changing no data.

Every probe is built so that it cannot change an item even when it is allowed: conditional writes on a
random key that does not exist (``attribute_exists(<hash key>)`` fails), a batch delete of a missing key, a
transaction whose ConditionCheck fails, PartiQL UPDATE/DELETE of a missing key, and PartiQL INSERT of a key
that already exists (refused as a duplicate). The answer tells the path apart: ``AccessDeniedException``
means denied, a failed condition (or success) means the write reached the table, i.e. allowed.

IAM changes take seconds to propagate on AWS, so :func:`verify_writes` polls with bounded exponential backoff
until every path gives the expected answer or a deadline passes.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from ..aws import Aws, error_code
from ..errors import RecoveryError
from ..items import Key, KeySchema
from .policies import partition_of, table_arn
from .polling import backoff_delays, poll  # noqa: F401 - re-exported: probe's names before the split

#: The write paths probed, in display order.
WRITE_PATHS: tuple[str, ...] = (
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "PartiQL INSERT",
    "PartiQL UPDATE",
    "PartiQL DELETE",
)
READ_PATH = "GetItem"

#: The IAM actions that authorise each path (for the simulation fallback). A transaction here writes with Put.
PATH_ACTIONS: dict[str, tuple[str, ...]] = {
    "PutItem": ("dynamodb:PutItem",),
    "UpdateItem": ("dynamodb:UpdateItem",),
    "DeleteItem": ("dynamodb:DeleteItem",),
    "BatchWriteItem": ("dynamodb:BatchWriteItem",),
    "TransactWriteItems": ("dynamodb:PutItem", "dynamodb:ConditionCheckItem"),
    "PartiQL INSERT": ("dynamodb:PartiQLInsert",),
    "PartiQL UPDATE": ("dynamodb:PartiQLUpdate",),
    "PartiQL DELETE": ("dynamodb:PartiQLDelete",),
    "GetItem": ("dynamodb:GetItem",),
}

DENIED, ALLOWED, ERROR, SKIPPED = "denied", "allowed", "error", "skipped"
DENIED_CODES = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "403"}
#: Answers proving the request passed IAM and reached the table (where the probe's condition stopped it).
REACHED_TABLE_CODES = {"ConditionalCheckFailedException", "DuplicateItemException"}
PROBE_ATTRIBUTE = "recovery_probe"

#: Probes are quick questions: a few retries for throttling, not the runbook's patient default.
PROBE_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20)


@dataclass
class ProbeResult:
    """The answer of one write (or read) path: denied, allowed, error or skipped, with the AWS error code."""

    path: str
    outcome: str
    code: str | None = None
    detail: str = ""


@dataclass
class Verification:
    """What :func:`verify_writes` established, and how (``assume_role``, ``simulation`` or ``unverified``)."""

    expect: str
    method: str
    ok: bool
    results: list[ProbeResult] = field(default_factory=list)
    read: ProbeResult | None = None
    attempts: int = 0
    elapsed_seconds: float = 0.0
    detail: str = ""

    @property
    def failing(self) -> list[ProbeResult]:
        """The probed paths whose answer is not the expected one (skipped paths excluded)."""
        return [r for r in self.results if r.outcome not in (self.expect, SKIPPED)]

    def record_fields(self) -> dict[str, Any]:
        """The verification's details as the timeline records them (method, each path's answer, attempts...)."""
        return {
            "method": self.method,
            "paths": {r.path: r.outcome for r in self.results},
            "attempts": self.attempts,
            "elapsed_seconds": round(self.elapsed_seconds, 2),
            "detail": self.detail,
        }

    def summary(self) -> str:
        """One line for the timeline and the notebook."""
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        return f"{self.method}: {parts} after {self.attempts} attempt(s), {self.elapsed_seconds:.1f}s"


# -- probe keys ------------------------------------------------------------------------------------------
def _value(type_: str, rng: random.Random) -> dict[str, Any]:
    token = uuid.UUID(int=rng.getrandbits(128))
    if type_ == "S":
        return {"S": f"recovery-probe-{token}"}
    if type_ == "N":
        # A negative number with 30 random digits: valid (38 digits max) and vanishingly unlikely to exist.
        digits = "".join(str(rng.randrange(10)) for _ in range(20))
        return {"N": f"-9{digits[:9]}.{digits[9:]}1"}
    if type_ == "B":
        return {"B": b"recovery-probe-" + token.bytes}
    raise RecoveryError(f"unsupported key type {type_!r}")


def probe_key(schema: KeySchema, rng: random.Random | None = None) -> Key:
    """A random key of the table's real schema (S, N or B; hash-only or hash+range) that does not exist."""
    rng = rng or random.Random(uuid.uuid4().int)
    return {name: _value(type_, rng) for name, type_ in schema.types().items()}


def find_existing_key(ddb: Any, table_name: str, schema: KeySchema) -> Key | None:
    """One existing item's key (for the duplicate INSERT probe), or None for an empty table."""
    names = {f"#k{i}": n for i, n in enumerate(schema.names)}
    resp = ddb.scan(
        TableName=table_name, Limit=1, ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
    )
    items = resp.get("Items") or []
    return schema.key_of(items[0]) if items else None


# -- one probe -------------------------------------------------------------------------------------------
def probe_outcome(exc: BaseException | None) -> tuple[str, str | None, str]:
    """(outcome, code, detail) of a probe's answer."""
    if exc is None:
        return ALLOWED, None, "the request succeeded (it changed nothing: the key does not exist)"
    if isinstance(exc, ClientError):
        code = error_code(exc) or ""
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if code in DENIED_CODES or "AccessDenied" in code or "not authorized" in message:
            return DENIED, code, message[:300]
        if code in REACHED_TABLE_CODES:
            return ALLOWED, code, "write permitted; the probe's condition stopped it"
        if code == "TransactionCanceledException":
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", []) or []]
            if "ConditionalCheckFailed" in reasons or "ConditionalCheckFailed" in message:
                return ALLOWED, code, "transaction permitted; its ConditionCheck cancelled it"
        return ERROR, code, message[:300]
    if isinstance(exc, (BotoCoreError, ResponseParserError)):
        return ERROR, type(exc).__name__, str(exc)[:300]
    raise exc


def _q(identifier: str) -> str:
    """A PartiQL quoted identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def _lit(name: str) -> str:
    """A PartiQL string literal (attribute names inside a VALUE tuple)."""
    return "'" + name.replace("'", "''") + "'"


def _where(schema: KeySchema) -> str:
    return " AND ".join(f"{_q(n)} = ?" for n in schema.names)


def _request(
    ddb: Any, table: str, schema: KeySchema, path: str, key: Key, other: Key, existing: Key | None
) -> Callable[[], Any] | None:
    """The harmless request for ``path`` (None when it cannot be made harmless: see PartiQL INSERT)."""
    cond = {
        "ConditionExpression": "attribute_exists(#h)",
        "ExpressionAttributeNames": {"#h": schema.hash_name},
    }
    params = [key[n] for n in schema.names]
    if path == "PutItem":
        return lambda: ddb.put_item(TableName=table, Item=dict(key), **cond)
    if path == "UpdateItem":
        return lambda: ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #p = :v",
            ConditionExpression="attribute_exists(#h)",
            ExpressionAttributeNames={"#h": schema.hash_name, "#p": PROBE_ATTRIBUTE},
            ExpressionAttributeValues={":v": {"S": "probe"}},
        )
    if path == "DeleteItem":
        return lambda: ddb.delete_item(TableName=table, Key=key, **cond)
    if path == "BatchWriteItem":
        return lambda: ddb.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": key}}]})
    if path == "TransactWriteItems":
        return lambda: ddb.transact_write_items(
            TransactItems=[
                {"ConditionCheck": {"TableName": table, "Key": key, **cond}},
                {"Put": {"TableName": table, "Item": dict(other), **cond}},
            ]
        )
    if path == "PartiQL UPDATE":
        stmt = f"UPDATE {_q(table)} SET {_q(PROBE_ATTRIBUTE)} = ? WHERE {_where(schema)}"
        return lambda: ddb.execute_statement(Statement=stmt, Parameters=[{"S": "probe"}, *params])
    if path == "PartiQL DELETE":
        stmt = f"DELETE FROM {_q(table)} WHERE {_where(schema)}"
        return lambda: ddb.execute_statement(Statement=stmt, Parameters=params)
    if path == "PartiQL INSERT":
        if existing is None:
            return None
        values = ", ".join(f"{_lit(n)}: ?" for n in schema.names)
        stmt = f"INSERT INTO {_q(table)} VALUE {{{values}}}"
        return lambda: ddb.execute_statement(Statement=stmt, Parameters=[existing[n] for n in schema.names])
    raise ValueError(f"unknown write path {path!r}; known: {WRITE_PATHS}")


def probe_writes(
    ddb: Any,
    table_name: str,
    schema: KeySchema,
    paths: Sequence[str] = WRITE_PATHS,
    *,
    existing_key: Key | None = None,
    rng: random.Random | None = None,
) -> list[ProbeResult]:
    """Try each write path once with a harmless request; ``ddb`` is a client acting as the application."""
    rng = rng or random.Random(uuid.uuid4().int)
    key, other = probe_key(schema, rng), probe_key(schema, rng)
    out = []
    for path in paths:
        request = _request(ddb, table_name, schema, path, key, other, existing_key)
        if request is None:
            out.append(
                ProbeResult(
                    path,
                    SKIPPED,
                    None,
                    "not probed: the table has no item, and an INSERT of a new key could create "
                    "one; the deny policy's coverage of dynamodb:PartiQLInsert was checked instead",
                )
            )
            continue
        try:
            request()
            exc: BaseException | None = None
        except (ClientError, BotoCoreError, ResponseParserError) as e:
            exc = e
        out.append(ProbeResult(path, *probe_outcome(exc)))
    return out


def probe_read(ddb: Any, table_name: str, schema: KeySchema) -> ProbeResult:
    """GetItem of a missing key: allowed means the application can still read."""
    try:
        ddb.get_item(TableName=table_name, Key=probe_key(schema))
        return ProbeResult(READ_PATH, ALLOWED, None, "reads work")
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        outcome, code, detail = probe_outcome(exc)
        return ProbeResult(READ_PATH, outcome, code, detail)


# -- verification as the application -----------------------------------------------------------------------
def _simulate(aws: Aws, role: str, table: str, paths: Sequence[str]) -> list[ProbeResult]:
    """IAM's policy simulator for the application role (when it cannot be assumed)."""
    actions = sorted({a for p in paths for a in PATH_ACTIONS[p]})
    resp = aws.iam.simulate_principal_policy(PolicySourceArn=role, ActionNames=actions, ResourceArns=[table])
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in resp.get("EvaluationResults", [])}
    out = []
    for path in paths:
        ds = [decisions.get(a, "unknown") for a in PATH_ACTIONS[path] if a != "dynamodb:ConditionCheckItem"]
        if all(d in ("explicitDeny", "implicitDeny") for d in ds):
            out.append(ProbeResult(path, DENIED, ",".join(ds), "simulated"))
        elif all(d == "allowed" for d in ds):
            out.append(ProbeResult(path, ALLOWED, ",".join(ds), "simulated"))
        else:
            out.append(ProbeResult(path, ERROR, ",".join(ds), "simulation gave no decision"))
    return out


def _verify_by_simulation(
    aws: Aws,
    table_name: str,
    app_role_arn: str,
    assume_error: Exception,
    *,
    expect: str,
    paths: Sequence[str],
    done: Callable[[list[ProbeResult]], bool],
    timeout_seconds: float,
    initial_delay: float,
    max_delay: float,
    sleep: Callable[[float], None],
) -> Verification:
    """AssumeRole refused: ask IAM's policy simulator instead; ``unverified`` when that is refused too."""
    arn = table_arn(table_name, aws.account_id, aws.region, partition_of(app_role_arn))
    try:
        results, attempts, elapsed = poll(
            lambda: _simulate(aws, app_role_arn, arn, paths),
            done,
            timeout_seconds=timeout_seconds,
            initial_delay=initial_delay,
            max_delay=max_delay,
            sleep=sleep,
        )
    except (ClientError, BotoCoreError, ResponseParserError) as sim_error:
        return Verification(
            expect,
            "unverified",
            False,
            [],
            None,
            0,
            0.0,
            f"could not act as {app_role_arn} ({assume_error}) nor simulate its policies "
            f"({sim_error}). "
            f"Check that the runbook's identity may sts:AssumeRole {app_role_arn} and that the role's "
            "trust policy allows it, or grant iam:SimulatePrincipalPolicy on the role; then run this "
            "step again.",
        )
    v = Verification(
        expect,
        "simulation",
        done(results),
        results,
        None,
        attempts,
        elapsed,
        f"AssumeRole refused ({assume_error}); IAM's policy simulator was used instead. It does "
        "not see resource policies or SCPs.",
    )
    return v


def verify_writes(
    aws: Aws,
    table_name: str,
    schema: KeySchema,
    app_role_arn: str,
    *,
    expect: str,
    paths: Sequence[str] = WRITE_PATHS,
    existing_key: Key | None = None,
    timeout_seconds: float = 60.0,
    initial_delay: float = 0.5,
    max_delay: float = 8.0,
    check_read: bool = True,
    session_name: str = "recovery-probe",
    sleep: Callable[[float], None] = time.sleep,
) -> Verification:
    """Probe ``paths`` as the application role until each answers ``expect`` ("denied" or "allowed").

    Acts as the role through sts:AssumeRole. If AWS refuses that (the role trusts only its service), falls
    back to iam:SimulatePrincipalPolicy; if that is refused too, returns an ``unverified`` result.
    """
    if expect not in (DENIED, ALLOWED):
        raise ValueError("expect is 'denied' or 'allowed'")

    def done(results: list[ProbeResult]) -> bool:
        return all(r.outcome in (expect, SKIPPED) for r in results)

    try:
        app = aws.assume_role(app_role_arn, session_name=session_name)
    except (RecoveryError, BotoCoreError, ResponseParserError) as assume_error:
        return _verify_by_simulation(
            aws,
            table_name,
            app_role_arn,
            assume_error,
            expect=expect,
            paths=paths,
            done=done,
            timeout_seconds=timeout_seconds,
            initial_delay=initial_delay,
            max_delay=max_delay,
            sleep=sleep,
        )
    client = app.with_config(PROBE_CONFIG, call_tag="probe")  # recorded apart: probe-calls.jsonl
    ddb = client.dynamodb
    results, attempts, elapsed = poll(
        lambda: probe_writes(ddb, table_name, schema, paths, existing_key=existing_key),
        done,
        timeout_seconds=timeout_seconds,
        initial_delay=initial_delay,
        max_delay=max_delay,
        sleep=sleep,
    )
    read = probe_read(ddb, table_name, schema) if check_read else None
    return Verification(
        expect, "assume_role", done(results), results, read, attempts, elapsed, f"probed as {app_role_arn}"
    )
