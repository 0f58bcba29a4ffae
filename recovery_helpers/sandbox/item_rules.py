"""DynamoDB's rules that need the table: keys against the schema, key sizes, item sizes, batch shapes."""

from __future__ import annotations

from typing import Any


def check(operation: str, body: dict[str, Any]) -> None:
    """Raise validation.Refusal for what DynamoDB refuses once it knows the table."""
    return
