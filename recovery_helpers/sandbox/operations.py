"""DynamoDB operations grouped by what the sandbox does with them."""

from __future__ import annotations

#: Operations that read or write items: the ones AWS throttles, and whose answers are already DynamoDB JSON.
DATA_PLANE = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchGetItem",
        "BatchWriteItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)
