"""The PartiQL key-equality statements moto's parser cannot take with ``?`` parameters, done as AWS does.

moto's parser asserts (HTTP 500) on ``DELETE ... WHERE k = ?`` and ``INSERT ... VALUE {'k': ?}``, and answers a
duplicate INSERT or an UPDATE of a missing item with success. The three single-item forms below are executed
here; every other statement goes to moto unchanged:

    DELETE FROM <table> WHERE <key> = ? [AND <key> = ?]
    UPDATE <table> SET <name> = ? WHERE <key> = ? [AND <key> = ?]
    INSERT INTO <table> VALUE {'<name>': ?, ...}

Names are read as PartiQL reads them: a double-quoted identifier holds any character (``""`` is a quote: a key
named ``tenant id``, ``a.b`` or ``clé`` works like any other); an unquoted one is letters, digits and ``_``
(an unquoted ``a.b`` is a path, which is left to moto). Attribute names in a VALUE tuple are single-quoted
string literals (``''`` is a quote). Keywords are case-insensitive.

An ExecuteTransaction made only of these forms runs as one TransactWriteItems (moto applied its statements one
by one: a failing one left the earlier ones written); a duplicate INSERT is then reason ``DuplicateItem``. A
BatchExecuteStatement of these forms answers per statement (moto's validation answered HTTP 500 on them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:"(?P<quoted>(?:[^"]|"")*)"|'(?P<string>(?:[^']|'')*)'|(?P<word>[A-Za-z0-9_.\-]+)|(?P<mark>[?=,{}:;]))""",
    re.DOTALL,
)
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
Token = tuple[str, str]  # (kind, text): kind is "quoted", "string", "word" or "mark"


def tokens(statement: str) -> list[Token] | None:
    """The statement's tokens, or None when it holds anything else (literals, operators, comments...)."""
    out: list[Token] = []
    pos, end = 0, len(statement.rstrip())
    while pos < end:
        m = _TOKEN.match(statement, pos)
        if m is None or m.end() == pos:
            return None
        kind = m.lastgroup or ""
        text = m.group(kind)
        if kind == "quoted":
            text = text.replace('""', '"')
        elif kind == "string":
            text = text.replace("''", "'")
        out.append((kind, text))
        pos = m.end()
    if out and out[-1] == ("mark", ";"):
        out.pop()
    return out


class _Reader:
    """Consumes tokens left to right; every method answers None (no match) rather than raising."""

    def __init__(self, toks: list[Token]) -> None:
        self.toks, self.i = toks, 0

    def keyword(self, word: str) -> bool:
        if (
            self.i < len(self.toks)
            and self.toks[self.i][0] == "word"
            and self.toks[self.i][1].upper() == word
        ):
            self.i += 1
            return True
        return False

    def mark(self, mark: str) -> bool:
        if self.i < len(self.toks) and self.toks[self.i] == ("mark", mark):
            self.i += 1
            return True
        return False

    def name(self, table: bool = False) -> str | None:
        """An identifier: quoted (any characters) or bare (a table name may hold ``.`` and ``-`` too)."""
        if self.i >= len(self.toks):
            return None
        kind, text = self.toks[self.i]
        if kind == "quoted" and text:
            self.i += 1
            return text
        if kind == "word" and (table or _BARE_NAME.fullmatch(text)):
            self.i += 1
            return text
        return None

    def string(self) -> str | None:
        if self.i < len(self.toks) and self.toks[self.i][0] == "string":
            self.i += 1
            return self.toks[self.i - 1][1]
        return None

    def done(self) -> bool:
        return self.i == len(self.toks)

    def key_equalities(self) -> list[str] | None:
        """``<name> = ? [AND <name> = ?]`` to the end: the names, in order."""
        names = []
        while True:
            name = self.name()
            if name is None or not self.mark("=") or not self.mark("?"):
                return None
            names.append(name)
            if self.done():
                return names if len(names) <= 2 else None
            if not self.keyword("AND"):
                return None


def parse_delete(statement: str) -> tuple[str, list[str]] | None:
    """(table, key names) of ``DELETE FROM t WHERE k = ? [AND k2 = ?]``."""
    r = _Reader(tokens(statement) or [])
    if not (r.keyword("DELETE") and r.keyword("FROM")):
        return None
    table = r.name(table=True)
    if table is None or not r.keyword("WHERE"):
        return None
    names = r.key_equalities()
    return (table, names) if names else None


def parse_update(statement: str) -> tuple[str, str, list[str]] | None:
    """(table, attribute set, key names) of ``UPDATE t SET a = ? WHERE k = ? [AND k2 = ?]``."""
    r = _Reader(tokens(statement) or [])
    if not r.keyword("UPDATE"):
        return None
    table = r.name(table=True)
    if table is None or not r.keyword("SET"):
        return None
    attribute = r.name()
    if attribute is None or not (r.mark("=") and r.mark("?") and r.keyword("WHERE")):
        return None
    names = r.key_equalities()
    return (table, attribute, names) if names else None


def parse_insert(statement: str) -> tuple[str, list[str]] | None:
    """(table, attribute names in order) of ``INSERT INTO t VALUE {'a': ?, 'b': ?}``."""
    r = _Reader(tokens(statement) or [])
    if not (r.keyword("INSERT") and r.keyword("INTO")):
        return None
    table = r.name(table=True)
    if table is None or not r.keyword("VALUE") or not r.mark("{"):
        return None
    fields: list[str] = []
    while True:
        field = r.string()
        if not field or not (r.mark(":") and r.mark("?")):
            return None
        fields.append(field)
        if r.mark("}"):
            break
        if not r.mark(","):
            return None
    return (table, fields) if r.done() and len(set(fields)) == len(fields) else None


def install() -> None:
    """Route ExecuteTransaction of the forms above through TransactWriteItems (call once)."""
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.execute_transaction = wrap_execute_transaction(DynamoDBBackend.execute_transaction)
    DynamoDBBackend.batch_execute_statement = wrap_batch_execute_statement(
        DynamoDBBackend.batch_execute_statement
    )


def wrap_batch_execute_statement(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, statements: list[dict[str, Any]]) -> Any:
        from moto.dynamodb.exceptions import ConditionalCheckFailed

        parsed = [_element(self, s.get("Statement", ""), s.get("Parameters") or []) for s in statements]
        if not parsed or any(e is None for e in parsed):
            return fn(self, statements)
        responses = []
        for statement, (element, _) in zip(statements, parsed, strict=True):  # type: ignore[misc]
            table = next(iter(element.values()))["TableName"]
            try:
                _try(self, statement["Statement"], statement.get("Parameters") or [])
                responses.append({"TableName": table})
            except ConditionalCheckFailed:
                responses.append(
                    {
                        "TableName": table,
                        "Error": {
                            "Code": "ConditionalCheckFailed",
                            "Message": "The conditional request failed",
                        },
                    }
                )
            except Exception as exc:  # noqa: BLE001 - answered per statement, as AWS does
                code = getattr(exc, "error_type", type(exc).__name__).rsplit("#", 1)[-1]
                code = code.removesuffix("Exception")
                responses.append(
                    {
                        "TableName": table,
                        "Error": {"Code": code, "Message": str(getattr(exc, "message", exc))},
                    }
                )
        return responses

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


def wrap_execute_transaction(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, statements: list[dict[str, Any]]) -> Any:
        from moto.dynamodb.exceptions import TransactionCanceledException

        elements = [_element(self, s.get("Statement", ""), s.get("Parameters") or []) for s in statements]
        if not elements or any(e is None for e in elements):
            return fn(self, statements)
        try:
            self.transact_write_items([e[0] for e in elements])  # type: ignore[index]
        except TransactionCanceledException as exc:
            raise _duplicates_named(exc, [e[1] for e in elements]) from None  # type: ignore[index]
        return []

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


def _element(
    backend: Any, statement: str, parameters: list[dict[str, Any]]
) -> tuple[dict[str, Any], str] | None:
    """The TransactWriteItems element doing what one DELETE/UPDATE/INSERT statement does, and its verb."""
    delete, update, insert = parse_delete(statement), parse_update(statement), parse_insert(statement)
    if delete:
        table = backend.tables.get(delete[0])
        key = table and len(parameters) == len(delete[1]) and _key(table, delete[1], parameters)
        return ({"Delete": {"TableName": table.name, "Key": key}}, "DELETE") if key else None
    if update:
        table = backend.tables.get(update[0])
        key = table and len(parameters) == len(update[2]) + 1 and _key(table, update[2], parameters[1:])
        if not key:
            return None
        return (
            {
                "Update": {
                    "TableName": table.name,
                    "Key": key,
                    "UpdateExpression": "SET #a = :v",
                    "ConditionExpression": "attribute_exists(#h)",
                    "ExpressionAttributeNames": {"#a": update[1], "#h": table.hash_key_attr},
                    "ExpressionAttributeValues": {":v": parameters[0]},
                }
            },
            "UPDATE",
        )
    if insert:
        table = backend.tables.get(insert[0])
        if table is None or len(insert[1]) != len(parameters):
            return None
        item = dict(zip(insert[1], parameters, strict=True))
        if any(k not in item for k in table.table_key_attrs):
            return None
        return (
            {
                "Put": {
                    "TableName": table.name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(#h)",
                    "ExpressionAttributeNames": {"#h": table.hash_key_attr},
                }
            },
            "INSERT",
        )
    return None


def _duplicates_named(exc: Any, verbs: list[str]) -> Any:
    """The cancellation with an INSERT's failed condition reported as AWS reports it: DuplicateItem."""
    import json

    from moto.dynamodb.exceptions import TransactionCanceledException

    reasons = json.loads(exc.description).get("CancellationReasons") or []
    errors = []
    for verb, reason in zip(verbs, reasons, strict=False):
        code = None if reason.get("Code") in (None, "None") else reason["Code"]
        message = reason.get("Message")
        if verb == "INSERT" and code == "ConditionalCheckFailed":
            code, message = "DuplicateItem", "Duplicate primary key exists in table"
        errors.append((code, message, reason.get("Item")))
    return TransactionCanceledException(errors)


def wrap_execute_statement(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, statement: str, parameters: list[dict[str, Any]]) -> Any:
        if parameters:
            handled = _try(self, statement, parameters)
            if handled is not None:
                return handled
        return fn(self, statement, parameters)

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


def _key(table: Any, names: list[str], values: list[dict[str, Any]]) -> dict[str, Any] | None:
    pairs = dict(zip(names, values, strict=False))
    if len(pairs) != len(names) or set(pairs) != set(table.table_key_attrs):
        return None
    return pairs


def _try(backend: Any, statement: str, parameters: list[dict[str, Any]]) -> list[Any] | None:
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    from .restores import _error

    delete = parse_delete(statement)
    if delete:
        table = backend.tables.get(delete[0])
        key = table and len(parameters) == len(delete[1]) and _key(table, delete[1], parameters)
        if not key:
            return None
        backend.delete_item(table.name, key)
        return []
    update = parse_update(statement)
    if update:
        table = backend.tables.get(update[0])
        key = table and len(parameters) == len(update[2]) + 1 and _key(table, update[2], parameters[1:])
        if not key:
            return None
        if backend.get_item(table.name, key) is None:
            raise ConditionalCheckFailed
        backend.update_item(
            table.name,
            key,
            update_expression="SET #a = :v",
            expression_attribute_names={"#a": update[1]},
            expression_attribute_values={":v": parameters[0]},
        )
        return []
    insert = parse_insert(statement)
    if insert:
        table = backend.tables.get(insert[0])
        if table is None or len(insert[1]) != len(parameters):
            return None
        item = dict(zip(insert[1], parameters, strict=True))
        if any(k not in item for k in table.table_key_attrs):
            return None
        key = {k: item[k] for k in table.table_key_attrs}
        if backend.get_item(table.name, key) is not None:
            raise _error("DuplicateItemException", "Duplicate primary key exists in table")
        backend.put_item(table.name, item)
        return []
    return None
