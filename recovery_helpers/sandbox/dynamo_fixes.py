"""Where moto's DynamoDB behaves differently from DynamoDB, corrected (installed once by ``patches.install``).

Each correction below names what DynamoDB does; tests/test_sandbox_conformance.py holds one test per correction,
and ``make conformance`` measures the whole against dynalite's suite (docs/reference/sandbox-conformance.md).
"""

from __future__ import annotations

import functools
from typing import Any

from . import numbers

#: DynamoDB's namespace for a ValidationException (moto uses the service's own, which clients cannot tell apart
#: from DynamoDB's only when they read the code after '#'; raw-HTTP clients compare the whole type).
VALIDATION_TYPE = "com.amazon.coral.validate#ValidationException"


def install() -> None:
    from . import capacity, item_rules, pages, return_values, screening

    screening.install()
    item_rules.install()
    return_values.install()
    capacity.install()
    pages.install()
    _attributes_to_get()
    _comparisons_across_types()
    _undefined_placeholders()
    _item_size_as_dynamodb_counts()
    _validation_namespace()
    _exact_numbers()
    _exact_projection()
    _legacy_attribute_updates()


def _validation_namespace() -> None:
    from moto.dynamodb import exceptions

    exceptions.MockValidationException.error_type = VALIDATION_TYPE


# -- numbers: DynamoDB's rules, exact (moto's arithmetic used Python's 28-digit default context) ----------------
def _number_error(exc: numbers.NumberError) -> Exception:
    from moto.dynamodb.exceptions import MockValidationException

    return MockValidationException(str(exc))


def _exact_numbers() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    original = DynamoType.__init__

    @functools.wraps(original)
    def __init__(self: Any, type_as_dict: Any) -> None:
        original(self, type_as_dict)
        if self.type == "N" and isinstance(self.value, str):
            self.value = _stored(self.value)
        elif self.type == "NS" and isinstance(self.value, list):
            self.value = [_stored(v) if isinstance(v, str) else v for v in self.value]

    def __add__(self: Any, other: Any) -> Any:
        if self.type != other.type or self.type != "N":
            return _add(self, other)
        try:
            return DynamoType({"N": numbers.add(self.value, other.value)})
        except numbers.NumberError as exc:
            raise _number_error(exc) from None

    def __sub__(self: Any, other: Any) -> Any:
        if self.type != other.type or self.type != "N":
            return _sub(self, other)
        try:
            return DynamoType({"N": numbers.subtract(self.value, other.value)})
        except numbers.NumberError as exc:
            raise _number_error(exc) from None

    _add, _sub = DynamoType.__add__, DynamoType.__sub__
    DynamoType.__init__ = __init__
    DynamoType.__add__ = __add__
    DynamoType.__sub__ = __sub__


def _stored(text: str) -> str:
    """DynamoDB's stored form of a valid number; anything else is left for the request checks to refuse."""
    try:
        return numbers.canonical(text)
    except numbers.NumberError:
        return text


# -- projections: on the stored values, never through boto3's 38-digit TypeDeserializer ------------------------
def _exact_projection() -> None:
    """moto projected an item by converting it to Python values and back with boto3's (de)serializer, whose
    decimal context traps on numbers >= 1E+38 (HTTP 500 on a Scan with ProjectionExpression); it ignored
    ``#name[1]`` and returned list elements in the order named. Here a projection walks the stored
    AttributeValues, and list elements come back in index order, as DynamoDB returns them."""
    import copy
    import re

    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.responses import ProjectionExpressionParser

    part = re.compile(r"^([^\[\]]+)((?:\[\d+\])*)$")
    validate = ProjectionExpressionParser.parse

    def parse(self: Any) -> list[list[str]]:
        validate(self)  # moto's own checks (duplicates, reserved words); its paths are rebuilt below
        names = self.expression_attribute_names
        paths = []
        for expression in (self.projection_expression or "").split(","):
            path = []
            for piece in expression.strip().split("."):
                m = part.match(piece.strip())
                if m is None:
                    path.append(piece.strip())
                    continue
                name, indexes = m.group(1).strip(), m.group(2)
                if name in names:
                    if name not in self.expr_attr_names_found:
                        self.expr_attr_names_found.append(name)
                    name = names[name]
                path.append(name + indexes)
            if path != [""]:
                paths.append(path)
        return paths

    def steps(path: list[str]) -> list[str | int]:
        out: list[str | int] = []
        for piece in path:
            m = part.match(piece)
            if m is None:
                out.append(piece)
                continue
            out.append(m.group(1))
            out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
        return out

    def pick(value: Any, path: list[str | int], into: dict[Any, Any], key: Any) -> None:
        """Copy the part of ``value`` the path names into ``into[key]``, as nested {name or index: ...}."""
        if not path:
            into[key] = copy.deepcopy(value)
            return
        step, rest = path[0], path[1:]
        if isinstance(step, int):
            if value.type != "L" or step >= len(value.value):
                return
            child = value.value[step]
        else:
            if value.type != "M" or step not in value.value:
                return
            child = value.value[step]
        node = into.get(key)
        if not isinstance(node, dict):
            node = into[key] = {"__list__": value.type == "L"}
        pick(child, rest, node, step)

    def build(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        is_list = node.pop("__list__")
        if is_list:
            return DynamoType({"L": [build(node[i]) for i in sorted(node)]})
        return DynamoType({"M": {k: build(v) for k, v in node.items()}})

    def project(self: Any, projection_expressions: list[list[str]]) -> Any:
        root = DynamoType({"M": {}})
        root.value = dict(self.attrs)
        picked: dict[Any, Any] = {}
        for path in projection_expressions:
            pick(root, steps(path), picked, "item")
        result = build(picked["item"]).value if "item" in picked else {}
        item = Item.__new__(Item)
        item.hash_key, item.range_key = self.hash_key, self.range_key
        attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(attrs, result)
        item.attrs = attrs
        return item

    ProjectionExpressionParser.parse = parse
    Item.project = project


# -- legacy AttributeUpdates: DynamoDB's semantics (moto stored BOOL as a string, NULL deleted, 28-digit ADD) ---
def _legacy_attribute_updates() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    def mismatch() -> Exception:
        from moto.dynamodb.exceptions import MockValidationException

        return MockValidationException("Type mismatch for attribute to update")

    def update_with_attribute_updates(self: Any, attribute_updates: dict[str, Any]) -> None:
        for name, update in (attribute_updates or {}).items():
            action = update.get("Action") or "PUT"  # PUT when no Action is given, as DynamoDB does
            value = update.get("Value")
            current = self.attrs.get(name)
            if action == "PUT":
                self.attrs[name] = DynamoType(value)
                continue
            if action == "DELETE" and value is None:
                self.attrs.pop(name, None)
                continue
            kind = next(iter(value))
            if current is not None and current.type != kind:
                raise mismatch()
            if action == "ADD" and kind == "N":
                base = current.value if current is not None else "0"
                try:
                    self.attrs[name] = DynamoType({"N": numbers.add(base, value["N"])})
                except numbers.NumberError as exc:
                    raise _number_error(exc) from None
            elif action == "ADD":
                existing = list(current.value) if current is not None else []
                added = value[kind] if kind == "L" else [v for v in value[kind] if v not in existing]
                self.attrs[name] = DynamoType({kind: existing + list(added)})
            elif action == "DELETE" and current is not None:
                kept = [v for v in current.value if v not in value[kind]]
                if kept:
                    self.attrs[name] = DynamoType({kind: kept})
                else:
                    self.attrs.pop(name, None)

    Item.update_with_attribute_updates = update_with_attribute_updates


# -- item size: 409,600 bytes as DynamoDB counts them; a refused update changes nothing --------------------------
def _item_size_as_dynamodb_counts() -> None:
    """moto refused items over its own estimate of ~405,000 bytes, re-summing the whole item on every attribute
    set (quadratic). Puts are checked against DynamoDB's count in ``item_rules``; an update is checked on its
    result, and a refused or failed update leaves the item as it was (DynamoDB applies an update whole or not at
    all)."""
    import copy

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    from . import item_rules

    LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[method-assign, assignment]
    original = DynamoDBBackend.update_item

    @functools.wraps(original)
    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        from moto.dynamodb.exceptions import ItemSizeToUpdateTooLarge

        table = self.tables.get(table_name)
        before = None
        if table is not None:
            try:
                hash_value, range_value = self.get_keys_value(table, key)
                before = (hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value)))
            except Exception:  # noqa: BLE001 - a bad key: moto answers it below
                before = None
        try:
            item = original(self, table_name, key, *args, **kwargs)
            if item is not None and item_rules.item_size(item.attrs) > item_rules.MAX_ITEM_BYTES:
                raise ItemSizeToUpdateTooLarge()
            if item is not None:
                item_rules.check_index_types(table, item.to_json()["Attributes"])  # as a put would be checked
            return item
        except Exception:
            if before is not None:
                _put_back(table, *before)
            raise

    DynamoDBBackend.update_item = update_item


def _put_back(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
    """Restore one item of a table as it was (None: absent)."""
    if range_value is not None:
        bucket = table.items.get(hash_value, {})
        if item is None:
            bucket.pop(range_value, None)
            if not bucket:
                table.items.pop(hash_value, None)
        else:
            table.items.setdefault(hash_value, {})[range_value] = item
    elif item is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = item


# -- AttributesToGet: honoured by GetItem, BatchGetItem, Query, Scan (moto returned every attribute) -------
def _attributes_to_get() -> None:
    from moto.dynamodb.responses import DynamoHandler

    def as_projection(params: dict[str, Any]) -> None:
        names = params.pop("AttributesToGet", None)
        if names and not params.get("ProjectionExpression"):
            params["ProjectionExpression"] = ", ".join(f"#atg{i}" for i in range(len(names)))
            params["ExpressionAttributeNames"] = {f"#atg{i}": n for i, n in enumerate(names)}

    get_item, batch_get_item = DynamoHandler.get_item, DynamoHandler.batch_get_item

    @functools.wraps(get_item)
    def get(self: Any) -> Any:
        as_projection(self.body)
        return get_item(self)

    @functools.wraps(batch_get_item)
    def batch_get(self: Any) -> Any:
        for request in (self.body.get("RequestItems") or {}).values():
            as_projection(request)
        return batch_get_item(self)

    DynamoHandler.get_item, DynamoHandler.batch_get_item = get, batch_get
    for name in ("query", "scan"):
        original = getattr(DynamoHandler, name)

        def read(self: Any, _original: Any = original) -> Any:
            as_projection(self.body)
            return _original(self)

        setattr(DynamoHandler, name, functools.wraps(original)(read))


# -- expressions: as DynamoDB evaluates and refuses them -----------------------------------------------------------
def _comparisons_across_types() -> None:
    """``a < :v`` where ``a`` holds another type is false on DynamoDB (moto raised TypeError: HTTP 500, e.g. a
    Scan whose filter meets one item with a number where the others hold strings)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    for name in ("__lt__", "__le__", "__gt__", "__ge__"):
        original = getattr(DynamoType, name)

        def compare(self: Any, other: Any, _original: Any = original) -> bool:
            if getattr(other, "type", None) != self.type:
                return False
            return _original(self, other)

        setattr(DynamoType, name, compare)

    from moto.dynamodb import comparisons

    for op in ("OpLessThan", "OpLessThanOrEqual", "OpGreaterThan", "OpGreaterThanOrEqual"):
        cls = getattr(comparisons, op)
        original_expr = cls.expr

        def expr(self: Any, item: Any, _original: Any = original_expr) -> bool:
            try:
                return _original(self, item)
            except TypeError:  # operands of different types
                return False

        cls.expr = expr


def _undefined_placeholders() -> None:
    """A ``#name`` or ``:value`` the request does not define is a ValidationException (moto: KeyError, 500)."""
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.exceptions import MockValidationException

    def name(self: Any, key: str) -> str:
        names = self.expression_attribute_names or {}
        if key not in names:
            raise MockValidationException(
                "Invalid ConditionExpression: An expression attribute name used in the "
                f"document path is not defined; attribute name: {key}"
            )
        return names[key]

    def value(self: Any, key: str) -> Any:
        values = self.expression_attribute_values or {}
        if key not in values:
            raise MockValidationException(
                "Invalid ConditionExpression: An expression attribute value used in "
                f"expression is not defined; attribute value: {key}"
            )
        return values[key]

    ConditionExpressionParser._lookup_expression_attribute_name = name
    ConditionExpressionParser._lookup_expression_attribute_value = value
