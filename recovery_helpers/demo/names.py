"""The demo world's names and shape: the orders table's key, its tenant attribute, what the bug corrupts,
and the resources' names (split out of stage.py, which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..items import KeySchema

TENANT_ATTRIBUTE = "pk"
CORRUPTED_ATTRIBUTES = ["total", "currency", "shipping"]
KEY = KeySchema("pk", "S", "sk", "S")


@dataclass(frozen=True)
class Names:
    """The demo's AWS resource names; the default prefix gives the contract's defaults."""

    table: str = "demo-orders"
    app_role: str = "demo-app"
    read_only_parameter: str = "read-only-customers"
    deny_policy: str = "DenyWrite"
    log_group: str = "/demo/orders-app"
    audit_table: str = "demo-orders-audit"

    @classmethod
    def for_prefix(cls, prefix: str = "demo") -> Names:
        if prefix == "demo":
            return cls()
        return cls(
            f"{prefix}-orders",
            f"{prefix}-app",
            f"{prefix}-read-only-customers",
            f"{prefix}-DenyWrite",
            f"/{prefix}/orders-app",
            f"{prefix}-orders-audit",
        )


DEFAULT = Names()
TABLE, APP_ROLE, READ_ONLY_PARAMETER = DEFAULT.table, DEFAULT.app_role, DEFAULT.read_only_parameter
DENY_POLICY, LOG_GROUP, AUDIT_TABLE = DEFAULT.deny_policy, DEFAULT.log_group, DEFAULT.audit_table
