"""Corrections to moto, installed once per process when a Sandbox starts.

Each correction is a thin wrapper around one moto method; the behaviour lives in ``history``, ``restores``,
``exports`` and ``iam`` beside this file.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from .clock import Clock
from .operations import DATA_PLANE
from .settings import SandboxSettings

_installed = False
_tls = threading.local()
STATE: dict[str, Any] = {"settings": SandboxSettings(), "clock": None}


def install(settings: SandboxSettings, clock: Clock) -> None:
    """Wrap moto's DynamoDB backend and handlers (idempotent; later calls only swap the settings)."""
    global _installed
    STATE["settings"], STATE["clock"] = settings, clock
    if _installed:
        return
    _installed = True
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    from . import dynamo_fixes, exports, iam, iam_conditions, partiql, restores, transactions

    dynamo_fixes.install()  # DynamoDB's number rules (its own, not the runbook's), projections, error types...
    DynamoDBBackend.execute_statement = partiql.wrap_execute_statement(DynamoDBBackend.execute_statement)
    DynamoDBBackend.transact_write_items = transactions.transact_write_items
    for name in (
        "put_item",
        "delete_item",
        "transact_write_items",
        "execute_statement",
        "execute_transaction",
        "batch_execute_statement",
    ):
        setattr(DynamoDBBackend, name, _outer(getattr(DynamoDBBackend, name)))
    DynamoDBBackend.update_item = _outer(_touching_update(DynamoDBBackend.update_item))
    Table.put_item = _touching(Table.put_item, from_result=True)
    Table.delete_item = _touching(Table.delete_item, from_result=True)
    DynamoDBBackend.update_continuous_backups = restores.wrap_update_continuous_backups(
        DynamoDBBackend.update_continuous_backups
    )
    DynamoDBBackend.describe_continuous_backups = restores.wrap_describe_continuous_backups(
        DynamoDBBackend.describe_continuous_backups
    )
    DynamoDBBackend.create_table = restores.wrap_forget_history(DynamoDBBackend.create_table)
    DynamoDBBackend.delete_table = restores.wrap_forget_history(DynamoDBBackend.delete_table)
    Table.describe = restores.wrap_describe(Table.describe)
    DynamoHandler.restore_table_to_point_in_time = restores.handle_restore_to_point_in_time
    DynamoHandler.restore_table_from_backup = restores.handle_restore_from_backup
    DynamoHandler.export_table_to_point_in_time = exports.handle_export
    DynamoHandler.describe_export = exports.handle_describe_export
    DynamoHandler.list_exports = exports.handle_list_exports
    DynamoHandler._authenticate_and_authorize_normal_action = iam.authorize_dynamodb
    iam.allow_account_principals()
    iam.scope_other_services()
    iam_conditions.evaluate_conditions(iam._param)
    _speed_up_dispatch()
    _fix_comparisons_and_segments()
    DynamoHandler.serialized = _fast_serialized(DynamoHandler.serialized)
    _stream_records_on_sandbox_clock()
    _logs_on_sandbox_clock()
    _cache_condition_parsing()
    from . import idempotency, locking, streams

    partiql.install()
    idempotency.install()
    streams.install()
    locking.install()  # last: the outermost wrapper of every item handler


def settings() -> SandboxSettings:
    return STATE["settings"]


def now() -> float:
    return STATE["clock"].now()


def set_enforcement(on: bool) -> None:
    """Switch moto's IAM enforcement on (every request needs valid sandbox credentials) or off."""
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin

    ActionAuthenticatorMixin.request_count = 0
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if on else float("inf")


def reset_state() -> None:
    """Forget sandbox-side state (PITR history, exports) kept beside moto's backends."""
    from . import exports, history, idempotency

    history.HISTORIES.clear()
    exports.EXPORTS.clear()
    idempotency.forget()


# -- speed: moto recomputes per request what never changes ---------------------------------------------------
def _speed_up_dispatch() -> None:
    """Cache moto's module list (an os.listdir per request) and each handler's method names (inspect per
    request). Same answers, about a fifth less CPU per request."""
    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    responses.method_names_from_class = functools.lru_cache(maxsize=None)(responses.method_names_from_class)


# -- speed: data-plane answers are already DynamoDB JSON ------------------------------------------------------


def _json_default(value: Any) -> Any:
    import base64
    import datetime as dt

    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def _fast_serialized(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto serializes item answers through its generic model-driven serializer: seconds for one 2,000-item
    scan page. Item answers are DynamoDB JSON already, so dump them directly (binary as base64, as AWS)."""
    import json

    def serialized(self: Any, action_result: Any) -> Any:
        result = getattr(action_result, "result", None)
        if isinstance(result, dict) and self._get_action() in DATA_PLANE:
            body = json.dumps(_without_none(result), default=_json_default, separators=(",", ":"))
            headers = {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}
            return 200, headers, body
        return original(self, action_result)

    return serialized


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _cache_condition_parsing() -> None:
    """moto lexes every condition expression from scratch, and parses a PutItem's condition twice (once to
    validate, once to apply). Lexing depends only on the expression text (its nodes are immutable tuples), and a
    parse only on the text, names and values: remember both. About a third of a conditional write's CPU."""
    import json
    import threading as _threading
    from collections import OrderedDict, deque

    from moto.dynamodb.comparisons import ConditionExpressionParser

    lex, parse = ConditionExpressionParser._lex_condition_expression, ConditionExpressionParser.parse
    lexed: dict[str, tuple[Any, ...]] = {}
    parsed: OrderedDict[str, tuple[Any, list[str], list[str]]] = OrderedDict()
    lock = _threading.Lock()

    def cached_lex(self: Any) -> Any:
        text = self.condition_expression
        nodes = lexed.get(text)
        if nodes is None:
            nodes = tuple(lex(self))
            if len(lexed) < 4096:
                lexed[text] = nodes
        return deque(nodes)

    def cached_parse(self: Any) -> Any:
        try:
            key = json.dumps(
                [
                    self.condition_expression,
                    self.expression_attribute_names,
                    self.expression_attribute_values,
                ],
                sort_keys=True,
                default=repr,
            )
        except (TypeError, ValueError):
            return parse(self)
        with lock:
            hit = parsed.get(key)
        if hit is not None:
            op, names, values = hit
            self.expr_attr_names_found.extend(names)
            self.expr_attr_values_found.extend(values)
            return op
        op = parse(self)
        with lock:
            parsed[key] = (op, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
            while len(parsed) > 512:
                parsed.popitem(last=False)
        return op

    ConditionExpressionParser._lex_condition_expression = cached_lex
    ConditionExpressionParser.parse = cached_parse


def _stream_records_on_sandbox_clock() -> None:
    """Stream records carry the time of the change on the sandbox clock, like PITR history and exports."""
    import datetime as dt

    from moto.dynamodb.models.table import StreamRecord

    original = StreamRecord.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        record = getattr(self, "record", None)
        if isinstance(record, dict) and "dynamodb" in record:
            record["dynamodb"]["ApproximateCreationDateTime"] = dt.datetime.fromtimestamp(now(), dt.UTC)

    StreamRecord.__init__ = __init__


def _logs_on_sandbox_clock() -> None:
    """CloudWatch Logs accepts events from 14 days before to 2 hours after the sandbox clock (AWS's rule on
    AWS's clock); moto measures that window on the wall clock, so after ``advance()`` it dropped the events the
    application stamped on the sandbox's time."""
    import datetime as dt

    import moto.logs.models as logs_models

    def utcnow() -> dt.datetime:  # moto's utcnow: naive UTC
        return dt.datetime.fromtimestamp(now(), dt.UTC).replace(tzinfo=None)

    logs_models.utcnow = utcnow


# -- moto crashes (HTTP 500) where AWS answers ---------------------------------------------------------------
def _fix_comparisons_and_segments() -> None:
    """BETWEEN over operands of different types is false on AWS (moto raised TypeError), and a segmented scan of
    a table with a binary partition key works (moto called .encode on bytes)."""
    from moto.dynamodb.comparisons import FuncBetween
    from moto.dynamodb.models.dynamo_type import Item

    between = FuncBetween.expr

    def expr(self: Any, item: Any) -> bool:
        try:
            return between(self, item)
        except TypeError:
            return False

    FuncBetween.expr = expr

    def is_within_segment(self: Any, segments: Any) -> bool:
        if segments == (None, None):
            return True
        segment, total_segments = segments
        return segment == segment_of(self.hash_key.value, self.hash_key.type, total_segments)

    Item.is_within_segment = is_within_segment


def segment_of(value: Any, kind: str, total_segments: int) -> int:
    """The Scan segment of an item by its partition key's value (text for S, N by value, bytes for B)."""
    import hashlib

    from .numbers import canonical

    if kind == "N":
        value = canonical(str(value))
    data = value if isinstance(value, (bytes, bytearray)) else str(value).encode("utf8")
    return hashlib.md5(bytes(data)).digest()[0] % total_segments


# -- change capture for PITR history ------------------------------------------------------------------------
def _outer(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One request-level write: collect the keys it touches, record their final state once if it succeeds."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_tls, "depth", 0)
        if depth == 0:
            _tls.touched = {}
        _tls.depth = depth + 1
        ok = False
        try:
            result = fn(*args, **kwargs)
            ok = True
            return result
        finally:
            _tls.depth = depth
            if depth == 0:
                touched, _tls.touched = _tls.touched, {}
                if ok:
                    _flush(touched)

    return wrapper


def _touching(fn: Callable[..., Any], from_result: bool) -> Callable[..., Any]:
    """Table-level put/delete: note which key changed (recorded by the enclosing request, or at once)."""

    @functools.wraps(fn)
    def wrapper(table: Any, *args: Any, **kwargs: Any) -> Any:
        result = fn(table, *args, **kwargs)
        if result is not None:
            entry = (table, result.hash_key, result.range_key)
            if getattr(_tls, "depth", 0) > 0:
                _tls.touched[(id(table), _key_repr(result))] = entry
            else:
                _flush({(id(table), _key_repr(result)): entry})
        return result

    return wrapper


def _touching_update(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Backend update_item mutates the item in place (no Table.put_item): note its key from the result."""

    @functools.wraps(fn)
    def wrapper(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        result = fn(backend, table_name, *args, **kwargs)
        if result is not None:
            table = backend.get_table(table_name)
            _tls.touched[(id(table), _key_repr(result))] = (table, result.hash_key, result.range_key)
        return result

    return wrapper


def _key_repr(item: Any) -> tuple[Any, Any]:
    return (item.hash_key, item.range_key)


def _flush(touched: dict[Any, tuple[Any, Any, Any]]) -> None:
    from .history import HISTORIES, snapshot_of

    if not touched:
        return
    when = now()
    for table, hash_key, range_key in touched.values():
        hist = HISTORIES.get(table.table_arn)
        if hist is None:
            continue
        try:
            current = table.get_item(hash_key, range_key)
        except Exception:  # noqa: BLE001
            continue
        snap = snapshot_of(current)
        key_attrs = {hist.hash_attr: {hash_key.type: hash_key.value}}
        if hist.range_attr and range_key is not None:
            key_attrs[hist.range_attr] = {range_key.type: range_key.value}
        hist.record(when, hist.key_of(key_attrs), snap)
