"""The writes of step 5 as data: what one key needs, its conditional request, and transactions of them.

Pure functions (no threads, no I/O): the engine (``patch.engine``) sends what these build. One request is
either sent alone (PutItem / DeleteItem / UpdateItem) or as one element of a TransactWriteItems; both carry
the same ConditionExpression, so a key is protected the same way whichever path writes it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..items import Item, Key, KeySchema, item_digest

#: Throttling answers (whole calls): the engine pauses every worker and tries again.
THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
        "TooManyRequestsException",
    }
)
#: Cancellation reasons of one transaction element that mean "too fast", not "this item is wrong".
THROTTLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
#: Answers that no retry will change: the whole run stops (what is done stays journaled; run again later).
FATAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "403",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "ResourceNotFoundException",
    }
)
#: DynamoDB refuses expression strings longer than 4 KB.
MAX_EXPRESSION = 4096
#: ... and expressions with more than 300 operators and functions (AND, =, attribute_exists...): a whole-item
#: condition uses two per non-key attribute, so about 150 attributes is the most one write can compare.
MAX_OPERATORS = 300
_OPERATOR = re.compile(r"<>|<=|>=|=|<|>|\b(?:AND|OR|NOT|BETWEEN|IN)\b|\b[a-z_]+\(")
#: TransactWriteItems takes at most 100 actions and 4 MB of items; the engine keeps a margin on the bytes.
TRANSACT_MAX_ITEMS = 100
TRANSACT_MAX_BYTES = 3_500_000
#: The write modes of apply_plan/undo.
WRITE_MODES = ("single", "transact", "auto")
_TRANSACT_ELEMENT = {"PutItem": "Put", "DeleteItem": "Delete", "UpdateItem": "Update"}

NO_BACKUP: Any = object()
#: ``Change.expected`` when the item its expected_digest stands for is not at hand (undo, resume).
UNKNOWN: Any = object()


@dataclass
class Change:
    """One key to bring from ``expected`` to ``target``.

    With ``attributes`` set, only those attributes are compared and written (UpdateItem); else whole items.
    ``pending`` is the backup of a previous run that has no outcome yet (crash between write and journal).
    ``expected`` is the compared part whose digest ``expected_digest`` is (the reviewed item, checked against
    the plan's digest), when known: a read equal to it needs no digest of its own. ``size_bound`` is an upper
    bound of the DynamoDB size of the reviewed and of the target item (their plan line's length), when known.
    """

    key_id: str
    key: Key
    expected_digest: str
    target: Item | None
    target_digest: str
    attributes: tuple[str, ...] | None
    action: str
    reviewed: Item | None = None
    classification: str | None = None
    pending: Any = NO_BACKUP
    expected: Any = UNKNOWN
    size_bound: int | None = None

    def digest_of(self, live: Item | None) -> str:
        """The digest of the compared part of ``live`` (an item just read), as ``pdigest`` gives it."""
        compared = project(live, self.attributes)
        if self.expected is not UNKNOWN and compared == self.expected:
            return self.expected_digest  # the same JSON values as the checked item: the same canonical text
        return item_digest(compared)


def project(item: Item | None, attributes: Sequence[str] | None) -> Item | None:
    """The part of an item the comparison looks at (whole item, or only ``attributes``; None = absent)."""
    if item is None or attributes is None:
        return item
    return {a: item[a] for a in attributes if a in item}


def pdigest(item: Item | None, attributes: Sequence[str] | None) -> str:
    """Digest of the compared part of an item."""
    return item_digest(project(item, attributes))


def apply_update(item: Item, attributes: Sequence[str], target: Item) -> Item:
    """``item`` after an attribute-level restore: each listed attribute set to ``target``'s, or removed."""
    out = dict(item)
    for attr in attributes:
        if attr in target:
            out[attr] = target[attr]
        else:
            out.pop(attr, None)
    return out


class Expr:
    """Placeholders for an expression: names and values go through #n/:v, so any attribute name works."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attr: str) -> str:
        if attr not in self._by_name:
            ph = f"#n{len(self._by_name)}"
            self._by_name[attr] = ph
            self.names[ph] = attr
        return self._by_name[attr]

    def value(self, value: Any) -> str:
        ph = f":v{len(self.values)}"
        self.values[ph] = value
        return ph

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


def equals_condition(
    expr: Expr, live: Item | None, schema: KeySchema, attributes: Sequence[str] | None = None
) -> str:
    """A condition true only while the item is ``live``: absent, or every (listed) attribute equal."""
    hash_ph = expr.name(schema.hash_name)
    if live is None:
        return f"attribute_not_exists({hash_ph})"
    parts = [f"attribute_exists({hash_ph})"]
    names = attributes if attributes is not None else sorted(a for a in live if a not in schema.names)
    for attr in names:
        if attr in live:
            parts.append(f"{expr.name(attr)} = {expr.value(live[attr])}")
        else:
            parts.append(f"attribute_not_exists({expr.name(attr)})")
    return " AND ".join(parts)


def condition_summary(change: Change) -> str:
    """The condition a write carries, in words (dry-run listing)."""
    if change.reviewed is None:
        return "only if the item does not exist"
    if change.attributes is not None:
        return f"only if {', '.join(change.attributes)} still equal the reviewed values"
    return f"only if the item still equals the reviewed version ({len(change.reviewed)} attributes)"


@dataclass
class WriteRequest:
    """One conditional write: the operation, its parameters (without TableName) and what it will leave."""

    op: str  # "PutItem" | "DeleteItem" | "UpdateItem"
    params: dict[str, Any]
    expression_size: int
    after: Item | None  # the item the write leaves, given the item read (UpdateItem: read + SET/REMOVE)

    def transact_element(self, table: str) -> dict[str, Any]:
        """This write as a TransactWriteItems element (the item found comes back if its condition fails)."""
        return {
            _TRANSACT_ELEMENT[self.op]: {
                "TableName": table,
                **self.params,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def too_large(self) -> str | None:
        """Why DynamoDB would refuse this write whatever the path (None: it is fine)."""
        if self.expression_size > MAX_EXPRESSION:
            return (
                f"the item has too many attributes for one DynamoDB condition expression "
                f"({self.expression_size} characters, the limit is {MAX_EXPRESSION}); patch it by hand, "
                "or with attributes=[...] naming fewer attributes"
            )
        expressions = (self.params.get(p, "") for p in ("ConditionExpression", "UpdateExpression"))
        # an operator takes at least one character: a short expression cannot have too many
        operators = max(count_operators(e) if len(e) > MAX_OPERATORS else 0 for e in expressions)
        if operators > MAX_OPERATORS:
            return (
                f"the item has too many attributes for one DynamoDB condition expression ({operators} "
                f"operators and functions, the limit is {MAX_OPERATORS}); patch it by hand, or with "
                "attributes=[...] naming fewer attributes"
            )
        return None


def count_operators(expression: str) -> int:
    """Operators and functions in an expression built here (names and values are all #n/:v placeholders)."""
    return len(_OPERATOR.findall(expression))


def build_write(change: Change, live: Item | None, schema: KeySchema) -> WriteRequest:
    """The conditional request that takes ``change`` from the ``live`` item read to its target."""
    expr = Expr()
    if change.attributes is not None and live is not None and change.target is not None:
        sets, removes = [], []
        for attr in change.attributes:
            if attr in change.target:
                sets.append(f"{expr.name(attr)} = {expr.value(change.target[attr])}")
            else:
                removes.append(expr.name(attr))
        clauses = ([f"SET {', '.join(sets)}"] if sets else []) + (
            [f"REMOVE {', '.join(removes)}"] if removes else []
        )
        cond = equals_condition(expr, live, schema, change.attributes)
        update = " ".join(clauses)
        return WriteRequest(
            "UpdateItem",
            {"Key": change.key, "UpdateExpression": update, "ConditionExpression": cond, **expr.kwargs()},
            max(len(cond), len(update)),
            apply_update(live, change.attributes, change.target),
        )
    cond = equals_condition(expr, live, schema)
    if change.target is None:
        return WriteRequest(
            "DeleteItem", {"Key": change.key, "ConditionExpression": cond, **expr.kwargs()}, len(cond), None
        )
    return WriteRequest(
        "PutItem",
        {"Item": change.target, "ConditionExpression": cond, **expr.kwargs()},
        len(cond),
        change.target,
    )


def item_size(item: Item | None) -> int:
    """An upper bound of an item's DynamoDB size in bytes, cheap to compute (0 for an absent item).

    The UTF-8 length of its Python text: every name and value is in it (text as its UTF-8 bytes, binary at
    one to four characters a byte), plus type tags and punctuation, so it never undercounts what DynamoDB
    counts against the 4 MB of a transaction.
    """
    return len(repr(item).encode()) if item else 0


@dataclass
class Write:
    """A write ready to send: the change, the item read (and the digest of its compared part), the request;
    ``size``: the bytes it counts against a transaction's limit (the item written and the values compared)."""

    change: Change
    live: Item | None
    live_digest: str
    request: WriteRequest
    size: int = -1

    def __post_init__(self) -> None:
        if self.size < 0:
            self.size = transaction_bytes(self.change, self.live, self.live_digest, self.request)


def transaction_bytes(change: Change, live: Item | None, live_digest: str, request: WriteRequest) -> int:
    """An upper bound of what one write counts against a transaction's 4 MB: the item it leaves and the item
    it compares (the plan line's length bounds both when the item read is the one reviewed)."""
    bound = change.size_bound
    reviewed = bound is not None and change.attributes is None and live_digest == change.expected_digest
    live_size = bound if reviewed else item_size(live)
    after = request.after
    after_size = bound if bound is not None and after is change.target else item_size(after)
    return (live_size or 0) + (after_size or 0) + 100


def transaction_batches(writes: Iterable[Write], max_items: int) -> Iterator[list[Write]]:
    """Group writes into transactions of at most ``max_items`` actions and TRANSACT_MAX_BYTES of items.

    A transaction counts both the item it writes and the values its condition compares (the item read); a
    key never appears twice in one transaction (DynamoDB refuses that).
    """
    batch: list[Write] = []
    size = 0
    seen: set[str] = set()
    for write in writes:
        cost = write.size
        if batch and (
            len(batch) >= max_items or size + cost > TRANSACT_MAX_BYTES or write.change.key_id in seen
        ):
            yield batch
            batch, size, seen = [], 0, set()
        batch.append(write)
        size += cost
        seen.add(write.change.key_id)
    if batch:
        yield batch


def client_token(scope: str, batch: Sequence[Write]) -> str:
    """ClientRequestToken of a transaction: the same batch of the same run gets the same token.

    ``scope`` names the run (patch or undo, patch_id, plan digest), so a new patch after an undo, or an undo,
    never reuses a token; each key_id with the digest it is conditioned on and the one it is written to is
    included, so one token always carries one request (AWS refuses a token reused with other parameters).
    """
    h = hashlib.sha256(scope.encode())
    for w in sorted(batch, key=lambda w: w.change.key_id):
        h.update(f"|{w.change.key_id}:{w.live_digest}>{w.change.target_digest}".encode())
    return h.hexdigest()[:36]


def cancellation_codes(response: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The CancellationReasons of a cancelled transaction, one per element (missing ones as {"Code": None})."""
    reasons = list(response.get("CancellationReasons") or [])
    reasons += [{}] * (n - len(reasons))
    return [{**r, "Code": None if r.get("Code") in (None, "None") else r.get("Code")} for r in reasons[:n]]
