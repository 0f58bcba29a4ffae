"""Request checks DynamoDB makes before it looks at a table: JSON types, the API model's constraints, AttributeValues.

moto trusts the request: a string where a map belongs answers HTTP 500, a 39-digit number or an empty string set
is stored, a missing TableName is a KeyError. DynamoDB refuses each with a 400 that clients branch on. This module
screens every DynamoDB JSON request in the order DynamoDB does, and answers as DynamoDB answers:

1. types (``SerializationException``, DynamoDB's Jackson-style messages): walked against botocore's copy of the
   AWS API model, so every operation and member is covered without a hand-written schema;
2. the model's constraints (``ValidationException``, "N validation errors detected: ..."): required members,
   lengths, ranges, enums and patterns, as DynamoDB's front end words them;
3. AttributeValues (``ValidationException``): exactly one type, no empty sets or duplicates, NULL true, numbers by
   DynamoDB's rules (``numbers``). Numbers are rewritten to DynamoDB's stored form before moto sees them.

Table-aware rules (keys, item sizes, batch shapes) are in ``item_rules``. The messages and their order follow
DynamoDB as recorded by dynalite's tests (architect/dynalite, which run against real DynamoDB too).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from typing import Any

from . import numbers

SERIALIZATION = "com.amazon.coral.service#SerializationException"
VALIDATION = "com.amazon.coral.validate#ValidationException"
JAVA_PACKAGE = "com.amazonaws.dynamodb.v20120810."
_CAST = (
    "class sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl cannot be cast to class "
    "java.lang.Class (sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl and java.lang.Class are in "
    "module java.base of loader 'bootstrap')"
)
#: DynamoDB's own constraints on a table name (the API model allows an ARN of up to 1024 characters instead).
TABLE_NAME = {"min": 3, "max": 255, "pattern": "[a-zA-Z0-9_.-]+"}
#: Operations on a table (not its items) check TableName before anything else, in words of their own.
TABLE_OPERATIONS = {"CreateTable", "DeleteTable", "DescribeTable", "DescribeTimeToLive", "UpdateTable"}
MAX_ERRORS = 10  # DynamoDB lists at most ten constraint violations


class Refusal(Exception):
    """A request DynamoDB refuses before doing anything: answered with ``code`` and ``message`` (HTTP 400)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def body(self) -> dict[str, str]:
        key = "Message" if self.code == SERIALIZATION else "message"  # as DynamoDB spells each
        return {"__type": self.code, key: self.message}


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("dynamodb")


@functools.cache
def input_shape(operation: str) -> Any | None:
    try:
        return _model().operation_model(operation).input_shape
    except Exception:  # noqa: BLE001 - an operation botocore does not know: leave it to moto
        return None


def screen(operation: str, body: Any) -> dict[str, Any]:
    """The request as DynamoDB reads it (booleans from "true", integers floored, nulls dropped, numbers in their
    stored form), or Refusal with DynamoDB's answer."""
    shape = input_shape(operation)
    if shape is None:
        return body
    if not isinstance(body, dict):
        raise Refusal(SERIALIZATION, "Start of structure or map found where not expected")
    cleaned = _struct(body, shape, field=True)
    if operation in TABLE_OPERATIONS:
        _table_name_first(cleaned)
    errors: list[str] = []
    _constraints(cleaned, shape, "", errors)
    if errors:
        count = len(errors)
        raise Refusal(
            VALIDATION, f"{count} validation error{'' if count == 1 else 's'} detected: " + "; ".join(errors)
        )
    from . import legacy, request_rules

    request_rules.check(operation, cleaned)
    _attribute_values(cleaned, shape)
    legacy.rewrite(operation, cleaned)
    return cleaned


# -- 1. types ---------------------------------------------------------------------------------------------------
def _java(shape: Any) -> str:
    """The Java type DynamoDB's front end names in its messages."""
    if shape.type_name == "string":
        return "java.lang.String"
    if shape.type_name == "list":
        return f"java.util.List<{_java(shape.member)}>"
    if shape.type_name == "map":
        return f"java.util.Map<java.lang.String, {_java(shape.value)}>"
    return JAVA_PACKAGE + shape.name


def _scalar_name(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE_VALUE" if value else "FALSE_VALUE"
    if isinstance(value, int):
        return "NUMBER_VALUE"
    if isinstance(value, float):
        return "NUMBER_VALUE" if value.is_integer() else "DECIMAL_VALUE"
    return "STRING_VALUE"


def _fail(message: str) -> Refusal:
    return Refusal(SERIALIZATION, message)


def _value(value: Any, shape: Any, field: bool, contained: bool = False) -> Any:
    """Check one JSON value against its shape; ``field`` when it is a structure member, ``contained`` when it is
    a list element or map value (Java's generic containers word their errors differently)."""
    kind = shape.type_name
    if kind == "structure":
        return _struct(value, shape, field)
    if kind == "list":
        if isinstance(value, dict):
            raise _fail("Start of structure or map found where not expected")
        if not isinstance(value, list):
            raise _fail(_CAST if contained else "Unexpected field type")
        return [_value(v, shape.member, field=False, contained=True) for v in value if v is not None]
    if kind == "map":
        if isinstance(value, list):
            raise _fail(f"Unrecognized collection type {_java(shape)}")
        if not isinstance(value, dict):
            raise _fail(_CAST if contained else "Unexpected field type")
        return {
            k: _value(v, shape.value, field=False, contained=True) for k, v in value.items() if v is not None
        }
    return _primitive(value, kind)


_JAVA_SCALARS = {
    "string": "String",
    "boolean": "Boolean",
    "integer": "Integer",
    "long": "Long",
    "double": "Double",
    "float": "Float",
}


def _primitive(value: Any, kind: str) -> Any:
    java = _JAVA_SCALARS.get(kind, "String")
    if isinstance(value, dict):
        raise _fail("Start of structure or map found where not expected")
    if kind == "blob":
        if isinstance(value, list):
            raise _fail("Unrecognized collection type class java.nio.ByteBuffer")
        if not isinstance(value, str):
            raise _fail("only base-64-encoded strings are convertible to bytes")
        if len(value) % 4:
            raise _fail(f"Base64 encoded length is expected a multiple of 4 bytes but found: {len(value)}")
        try:
            if base64.b64encode(base64.b64decode(value, validate=True)).decode() != value:
                raise ValueError
        except (binascii.Error, ValueError):
            raise _fail("Invalid last non-pad Base64 character dectected") from None
        return value
    if isinstance(value, list):
        raise _fail(f"Unrecognized collection type class java.lang.{java}")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            raise _fail(f"{_scalar_name(value)} cannot be converted to Boolean")
        text = str(value).upper()
        if text in ("TRUE", "1", "YES"):
            return True
        if text in ("FALSE", "0", "NO"):
            return False
        raise _fail("Unexpected token received from parser")
    if kind in ("integer", "long", "double", "float"):
        if isinstance(value, (bool, str)):
            raise _fail(f"{_scalar_name(value)} cannot be converted to {java}")
        return value if kind in ("double", "float") else math.floor(value)
    if kind == "timestamp":
        return value
    if not isinstance(value, str):
        raise _fail(f"{_scalar_name(value)} cannot be converted to String")
    return value


def _struct(value: Any, shape: Any, field: bool) -> dict[str, Any]:
    if shape.name == "AttributeValue":
        return _attribute_value_types(value, field)
    if isinstance(value, list):
        raise _fail(f"Unrecognized collection type class {JAVA_PACKAGE}{shape.name}")
    if not isinstance(value, dict):
        raise _fail("Unexpected field type" if field else "Unexpected value type in payload")
    out: dict[str, Any] = {}
    members = shape.members
    for name, child in value.items():  # unknown members and nulls are dropped, as DynamoDB does
        member = members.get(name)
        if member is not None and child is not None:
            out[name] = _value(child, member, field=True)
    return out


_AV_SCALARS = {"S": "string", "N": "string", "B": "blob", "BOOL": "boolean", "NULL": "boolean"}
_AV_SETS = {"SS": "string", "NS": "string", "BS": "blob"}
_AV_MAP = f"java.util.Map<java.lang.String, {JAVA_PACKAGE}AttributeValue>"


def _attribute_value_types(value: Any, field: bool) -> dict[str, Any]:
    """The type checks of an AttributeValue, written out: items are most of a request, and walking the model's
    ten members for each of their values made screening the sandbox's slowest step."""
    if isinstance(value, list):
        raise _fail(f"Unrecognized collection type class {JAVA_PACKAGE}AttributeValue")
    if not isinstance(value, dict):
        raise _fail("Unexpected field type" if field else "Unexpected value type in payload")
    out: dict[str, Any] = {}
    for kind, child in value.items():
        if child is None:
            continue
        if kind in _AV_SCALARS:
            scalar = _AV_SCALARS[kind]
            out[kind] = child if scalar == "string" and type(child) is str else _primitive(child, scalar)
        elif kind in _AV_SETS:
            scalar = _AV_SETS[kind]
            if isinstance(child, dict):
                raise _fail("Start of structure or map found where not expected")
            if not isinstance(child, list):
                raise _fail("Unexpected field type")
            out[kind] = [
                x if scalar == "string" and type(x) is str else _primitive(x, scalar)
                for x in child
                if x is not None
            ]
        elif kind == "L":
            if isinstance(child, dict):
                raise _fail("Start of structure or map found where not expected")
            if not isinstance(child, list):
                raise _fail("Unexpected field type")
            out[kind] = [_attribute_value_types(x, False) for x in child if x is not None]
        elif kind == "M":
            if isinstance(child, list):
                raise _fail(f"Unrecognized collection type {_AV_MAP}")
            if not isinstance(child, dict):
                raise _fail("Unexpected field type")
            out[kind] = {k: _attribute_value_types(v, False) for k, v in child.items() if v is not None}
    return out


def _table_name_first(body: dict[str, Any]) -> None:
    name = body.get("TableName")
    if name is None:
        raise Refusal(VALIDATION, "The parameter 'TableName' is required but was not present in the request")
    if not name.startswith("arn:") and not TABLE_NAME["min"] <= len(name) <= TABLE_NAME["max"]:
        raise Refusal(
            VALIDATION, "TableName must be at least 3 characters long and at most 255 characters long"
        )


# -- 2. the model's constraints ----------------------------------------------------------------------------------
def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _violation(errors: list[str], value: Any, path: str, rule: str) -> None:
    if len(errors) < MAX_ERRORS:
        shown = "null" if value is None else f"'{_shown(value)}'"
        errors.append(f"Value {shown} at '{path}' failed to satisfy constraint: {rule}")


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _constraints(value: Any, shape: Any, path: str, errors: list[str]) -> None:
    """Collect the model's constraint violations, worded and located (``requestItems.t.member.keys``) as DynamoDB
    words them."""
    kind = shape.type_name
    if kind == "structure":
        if shape.name == "AttributeValue":
            return  # checked as a whole in step 3
        for name, member in shape.members.items():
            here = f"{path}.{_lower_first(name)}" if path else _lower_first(name)
            child = value.get(name)
            if child is None:
                if name in shape.required_members:
                    _violation(errors, None, here, "Member must not be null")
                continue
            _member_rules(child, member, here, errors, table_name=(name == "TableName"))
            _constraints(child, member, here, errors)
    elif kind == "list" and not _only_values(shape.member):
        for i, child in enumerate(value, start=1):
            _constraints(child, shape.member, f"{path}.{i}.member", errors)
    elif kind == "map" and not _only_values(shape.value):
        if path == "requestItems":
            _request_items(value, errors)
        for key, child in value.items():
            _constraints(child, shape.value, f"{path}.{key}.member", errors)


def _request_items(value: dict[str, Any], errors: list[str]) -> None:
    """BatchGetItem/BatchWriteItem: the table names (map keys) and, for writes, 1 to 25 requests a table."""
    if any(
        not key.startswith("arn:")
        and not (
            TABLE_NAME["min"] <= len(key) <= TABLE_NAME["max"] and re.fullmatch(TABLE_NAME["pattern"], key)
        )
        for key in value
    ):
        _violation(
            errors,
            value,
            "requestItems",
            "Map keys must satisfy constraint: [Member must have length less than or equal to 255, Member must "
            "have length greater than or equal to 3, Member must satisfy regular expression pattern: "
            f"{TABLE_NAME['pattern']}]",
        )
    if any(isinstance(v, list) and not 1 <= len(v) <= 25 for v in value.values()):
        _violation(
            errors,
            value,
            "requestItems",
            "Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must "
            "have length greater than or equal to 1]",
        )


def _only_values(shape: Any) -> bool:
    """AttributeValues, or maps of them (items, keys): nothing in them for the model's constraints to check."""
    return shape.name == "AttributeValue" or (
        shape.type_name == "map" and shape.value.name == "AttributeValue"
    )


def _member_rules(value: Any, shape: Any, path: str, errors: list[str], table_name: bool) -> None:
    rules = dict(shape.metadata)
    if table_name and isinstance(value, str) and not value.startswith("arn:"):
        rules.update(TABLE_NAME)
    if "pattern" in rules and isinstance(value, str) and not re.fullmatch(rules["pattern"], value):
        _violation(errors, value, path, f"Member must satisfy regular expression pattern: {rules['pattern']}")
    if isinstance(value, (str, list, dict)):
        length = len(value)
        if "min" in rules and length < rules["min"]:
            _violation(
                errors, value, path, f"Member must have length greater than or equal to {rules['min']}"
            )
        if "max" in rules and length > rules["max"]:
            _violation(errors, value, path, f"Member must have length less than or equal to {rules['max']}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "min" in rules and value < rules["min"]:
            _violation(errors, value, path, f"Member must have value greater than or equal to {rules['min']}")
        if "max" in rules and value > rules["max"]:
            _violation(errors, value, path, f"Member must have value less than or equal to {rules['max']}")
    if "enum" in rules and value not in rules["enum"]:
        _violation(errors, value, path, f"Member must satisfy enum value set: [{', '.join(rules['enum'])}]")


# -- 3. AttributeValues ------------------------------------------------------------------------------------------
def _attribute_values(value: Any, shape: Any) -> None:
    """Check every AttributeValue in the request and put its numbers in DynamoDB's stored form (in place)."""
    kind = shape.type_name
    if kind == "structure":
        if shape.name == "AttributeValue":
            check_attribute_value(value)
            return
        for name, member in shape.members.items():
            if name in value:
                _attribute_values(value[name], member)
    elif kind == "list":
        for child in value:
            _attribute_values(child, shape.member)
    elif kind == "map":
        for child in value.values():
            _attribute_values(child, shape.value)


def _invalid(message: str) -> Refusal:
    return Refusal(VALIDATION, message)


def check_attribute_value(value: dict[str, Any]) -> None:
    """DynamoDB's rules for one AttributeValue (recursively), numbers rewritten to their stored form."""
    if not value:
        raise _invalid(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        )
    for kind, item in value.items():
        if kind == "N":
            value[kind] = _number(item)
        elif kind == "NULL" and not item:
            raise _invalid(
                "One or more parameter values were invalid: Null attribute value types must have the "
                "value of true"
            )
        elif kind in ("SS", "NS", "BS"):
            _set(kind, value)
        elif kind == "M":
            for child in item.values():
                check_attribute_value(child)
        elif kind == "L":
            for child in item:
                check_attribute_value(child)
    if len(value) > 1:
        raise _invalid(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
            "supported datatypes"
        )


_ALREADY_STORED = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d*[1-9])?$")


def _number(text: Any) -> str:
    if type(text) is str and len(text) <= 39 and text != "-0" and _ALREADY_STORED.match(text):
        digits = text.lstrip("-").replace(".", "").strip("0")
        if len(digits) <= numbers.MAX_DIGITS:
            return text  # already in DynamoDB's stored form, within every limit (fast path)
    try:
        return numbers.canonical(numbers.parse(text))
    except numbers.NumberError as exc:
        raise _invalid(str(exc)) from None


def _set(kind: str, value: dict[str, Any]) -> None:
    members = value[kind]
    if not members:
        raise _invalid(
            {
                "SS": "One or more parameter values were invalid: An string set  may not be empty",
                "NS": "One or more parameter values were invalid: An number set  may not be empty",
                "BS": "One or more parameter values were invalid: Binary sets should not be empty",
            }[kind]
        )
    if kind == "NS":
        members = value[kind] = [_number(m) for m in members]
        if len(set(members)) != len(members):
            raise _invalid("Input collection contains duplicates")
    elif len(set(members)) != len(members):
        shown = _shown(members)
        raise _invalid(
            f"One or more parameter values were invalid: Input collection {shown} contains duplicates."
            if kind == "SS"
            else f"One or more parameter values were invalid: Input collection {shown}of type BS contains "
            "duplicates."
        )
