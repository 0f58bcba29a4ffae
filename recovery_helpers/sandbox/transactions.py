"""TransactWriteItems without copying whole tables.

moto makes a deep copy of every table a transaction touches, to roll back on failure: a transaction on a
2,000-item table took ~20 ms, on a 50,000-item table about half a second. Here only the items the transaction
names are remembered, and a failed transaction puts exactly those back. Its stream records are held back
until it commits (``streams.deferred``), so a cancelled one leaves none and never touches other requests'
records. The rules are moto's own (one operation per item, at most 100 items, conditions per item, cancellation
reasons), plus DynamoDB's 4 MB for the items of one transaction, which moto does not check (counted here at least
as strictly as DynamoDB: a Put's item, or the item an Update, Delete or ConditionCheck acts on). Atomicity
against other requests comes from ``locking`` (the whole request runs under its lock).
"""

from __future__ import annotations

import copy
from typing import Any

from . import item_rules

#: DynamoDB's limit on the aggregate size of the items in one TransactWriteItems.
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from . import streams

    with streams.deferred() as pending:
        _transact_write_items(self, transact_items)
    streams.commit(pending)  # reached only when it committed


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models.dynamo_type import DynamoType

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    saved: list[tuple[Any, Any, Any, Any]] = []
    aggregate = 0
    for element in transact_items:
        if len(element) != 1:
            raise TransactWriteSingleOpException
        _, op = next(iter(element.items()))
        table = self.tables.get(op.get("TableName"))
        if table is None:
            continue  # reported per item below, as moto does
        key = op.get("Key") or {k: op["Item"][k] for k in table.table_key_attrs if k in op.get("Item", {})}
        if table.hash_key_attr not in key:
            continue
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
        try:
            current = table.get_item(hash_value, range_value)
        except Exception:  # noqa: BLE001
            continue
        saved.append((table, hash_value, range_value, copy.deepcopy(current)))
        if isinstance(op.get("Item"), dict):
            aggregate += item_rules.item_size(op["Item"])
        elif current is not None:
            aggregate += item_rules.item_size(current.attrs)
    if aggregate > MAX_TRANSACTION_BYTES:
        raise MockValidationException(
            f"Transaction request cannot be larger than 4 MB (its items are {aggregate} bytes)"
        )

    def roll_back() -> None:
        for table, hash_value, range_value, item in reversed(saved):
            if range_value is not None:
                bucket = table.items[hash_value]
                if item is None:
                    bucket.pop(range_value, None)
                    if not bucket:
                        table.items.pop(hash_value, None)
                else:
                    bucket[range_value] = item
            elif item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item

    seen: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []
    for element in transact_items:
        original_item = None
        try:
            op_type, op = next(iter(element.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            condition = op.get("ConditionExpression")
            if op_type == "Put":
                table = self.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            marker = (str(table_name), str(dict(sorted(key.items()))))
            if marker in seen:
                raise MultipleTransactionsException()
            seen.add(marker)
            current = self.get_item(table_name, key)
            if condition is not None and not get_filter_expression(condition, names, values).expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original_item = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=original_item)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            roll_back()
            raise
        except ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), original_item))
        except Exception as exc:  # noqa: BLE001 - reported per item, as AWS's CancellationReasons
            errors.append((type(exc).__name__, str(exc), original_item))
    if any(code is not None for code, _, _ in errors):
        roll_back()
        raise TransactionCanceledException(errors)
