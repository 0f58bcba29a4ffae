"""CreateTable's rules on key schemas, indexes and throughput, checked before the table name is looked up.

moto created tables DynamoDB refuses (two HASH keys, a second key that is not RANGE, an LSI on a hash-only table,
duplicate index names, NonKeyAttributes with ProjectionType ALL, more than 5 LSIs or 20 GSIs...) and, for a name
already in use, answered ResourceInUseException where DynamoDB answers ValidationException. Rules, their order and
wording as DynamoDB answers them: ported from dynalite's ``validations/createTable.js`` (architect/dynalite,
Apache-2.0), whose tests run against real DynamoDB too.
"""

from __future__ import annotations

from typing import Any

from .validation import VALIDATION, Refusal

_INVALID = "One or more parameter values were invalid: "
MAX_CAPACITY = 1_000_000_000_000
MAX_LOCAL_INDEXES = 5
MAX_GLOBAL_INDEXES = 20


def check_create_table(body: dict[str, Any]) -> None:
    """Raise Refusal (ValidationException) for a CreateTable DynamoDB refuses; None when it is acceptable."""
    message = _first_fault(body)
    if message:
        raise Refusal(VALIDATION, message)


def _first_fault(body: dict[str, Any]) -> str | None:
    names = [d.get("AttributeName") for d in body.get("AttributeDefinitions") or []]
    seen: set[Any] = set()  # index names, LSIs' and GSIs' together
    return (
        _throughput(body)
        or _table_keys(body, names)
        or _local_indexes(body, names, seen)
        or _global_indexes(body, names, seen)
    )


def _throughput(body: dict[str, Any]) -> str | None:
    throughput = body.get("ProvisionedThroughput")
    if body.get("BillingMode") == "PAY_PER_REQUEST":
        if throughput:
            return (
                _INVALID
                + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode "
                "is PAY_PER_REQUEST"
            )
        return None
    if not throughput or not throughput.get("ReadCapacityUnits") or not throughput.get("WriteCapacityUnits"):
        return (
            _INVALID + "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is "
            "PROVISIONED"
        )
    for unit in ("ReadCapacityUnits", "WriteCapacityUnits"):
        if throughput[unit] > MAX_CAPACITY:
            return f"Given value {throughput[unit]} for {unit} is out of bounds"
    return None


def _key_order(schema: list[dict[str, Any]]) -> str | None:
    """The faults every key schema (table or index) is checked for, in DynamoDB's order."""
    if len(schema) > 1 and schema[0].get("AttributeName") == schema[1].get("AttributeName"):
        return "Both the Hash Key and the Range Key element in the KeySchema have the same name"
    if schema[0].get("KeyType") != "HASH":
        return "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
    if len(schema) > 1 and schema[1].get("KeyType") != "RANGE":
        return "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"
    return None


def _undefined(keys: list[Any], names: list[Any]) -> str | None:
    if any(key not in names for key in keys):
        return (
            _INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
            f"Keys: [{', '.join(map(str, keys))}], AttributeDefinitions: [{', '.join(map(str, names))}]"
        )
    return None


def _table_keys(body: dict[str, Any], names: list[Any]) -> str | None:
    schema = body.get("KeySchema") or []
    keys = [k.get("AttributeName") for k in schema]
    if len(keys) > len(names):
        return "Invalid KeySchema: Some index key attribute have no definition"
    fault = _undefined(keys, names) or _key_order(schema)
    if fault:
        return fault
    if (
        body.get("LocalSecondaryIndexes") is None
        and body.get("GlobalSecondaryIndexes") is None
        and len(keys) != len(names)
    ):
        return (
            _INVALID
            + "Number of attributes in KeySchema does not exactly match number of attributes defined "
            "in AttributeDefinitions"
        )
    return None


def _index_common(index: dict[str, Any], names: list[Any]) -> str | None:
    schema = index.get("KeySchema") or []
    fault = _undefined([k.get("AttributeName") for k in schema], names) or _key_order(schema)
    return fault


def _projection(index: dict[str, Any]) -> str | None:
    projection = index.get("Projection") or {}
    kind = projection.get("ProjectionType")
    if kind is None:
        return _INVALID + "Unknown ProjectionType: null"
    if projection.get("NonKeyAttributes") and kind != "INCLUDE":
        return _INVALID + f"ProjectionType is {kind}, but NonKeyAttributes is specified"
    return None


def _duplicate(name: Any, seen: set[Any]) -> str | None:
    if name in seen:
        return _INVALID + f"Duplicate index name: {name}"
    seen.add(name)
    return None


def _local_indexes(body: dict[str, Any], names: list[Any], seen: set[Any]) -> str | None:
    indexes = body.get("LocalSecondaryIndexes")
    if indexes is None:
        return None
    if not indexes:
        return _INVALID + "List of LocalSecondaryIndexes is empty"
    table_schema = body.get("KeySchema") or []
    if len(table_schema) != 2:
        return (
            _INVALID + "Table KeySchema does not have a range key, which is required when specifying a "
            "LocalSecondaryIndex"
        )
    table_hash = table_schema[0].get("AttributeName")
    for index in indexes:
        name, schema = index.get("IndexName"), index.get("KeySchema") or []
        fault = _index_common(index, names)
        if not fault and len(schema) != 2:
            fault = _INVALID + f"Index KeySchema does not have a range key for index: {name}"
        if not fault and schema[0].get("AttributeName") != table_hash:
            fault = (
                _INVALID + "Index KeySchema does not have the same leading hash key as table KeySchema for "
                f"index: {name}. index hash key: {schema[0].get('AttributeName')}, table hash key: {table_hash}"
            )
        fault = fault or _projection(index) or _duplicate(name, seen)
        if fault:
            return fault
    if len(indexes) > MAX_LOCAL_INDEXES:
        return _INVALID + f"Number of LocalSecondaryIndexes exceeds per-table limit of {MAX_LOCAL_INDEXES}"
    return None


def _global_indexes(body: dict[str, Any], names: list[Any], seen: set[Any]) -> str | None:
    indexes = body.get("GlobalSecondaryIndexes")
    if indexes is None:
        return None
    if not indexes:
        return _INVALID + "List of GlobalSecondaryIndexes is empty"
    for index in indexes:
        name = index.get("IndexName")
        fault = _index_common(index, names) or _projection(index)
        if not fault and body.get("BillingMode") == "PAY_PER_REQUEST" and index.get("ProvisionedThroughput"):
            fault = (
                _INVALID
                + f"ProvisionedThroughput should not be specified for index: {name} when BillingMode "
                "is PAY_PER_REQUEST"
            )
        fault = fault or _duplicate(name, seen)
        if fault:
            return fault
    if len(indexes) > MAX_GLOBAL_INDEXES:
        return _INVALID + f"GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GLOBAL_INDEXES}"
    return None
