"""Where the tenant of an item lives: an attribute, or a part of an attribute matched by a pattern.

``tenant_attribute`` is either an attribute name (``"tenantId"``) or ``"<attribute>:<regex>"``, where the
regex's first group (or whole match) is the tenant, e.g. ``"pk:^([^#]+)#"`` for keys like ``tenant-1#doc-9``.
Diff, patch and the read-only switch all use this one definition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InputError

ALL = "all"


@dataclass(frozen=True)
class Tenancy:
    attribute: str | None = None
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, spec: str | None) -> Tenancy:
        if spec is None or spec == "":
            return cls()
        if not isinstance(spec, str):
            raise InputError(
                f"tenant_attribute must be a string like 'tenantId' or 'pk:^([^#]+)#', got {spec!r}"
            )
        name, sep, regex = spec.partition(":")
        if not name:
            raise InputError(f"tenant_attribute {spec!r} names no attribute")
        if not sep:
            return cls(attribute=name)
        try:
            return cls(attribute=name, pattern=re.compile(regex))
        except re.error as exc:
            raise InputError(
                f"tenant_attribute pattern {regex!r} is not a valid regular expression: {exc}"
            ) from exc

    @property
    def configured(self) -> bool:
        return self.attribute is not None

    def tenant_of(self, *items: Mapping[str, Any] | None) -> str | None:
        """The tenant of the first item (DynamoDB JSON, or a key) that carries the attribute."""
        if self.attribute is None:
            return None
        for item in items:
            if not item or self.attribute not in item:
                continue
            ((_, raw),) = item[self.attribute].items()
            value = raw if isinstance(raw, str) else str(raw)
            if self.pattern is None:
                return value
            m = self.pattern.search(value)
            if m:
                return m.group(1) if m.groups() else m.group(0)
        return None


def normalize_tenants(tenants: Iterable[str] | str | None) -> list[str]:
    """The tenants parameter as a list; ``["all"]`` (or None) means every tenant."""
    if tenants is None:
        return [ALL]
    if isinstance(tenants, str):
        tenants = [t.strip() for t in tenants.split(",")]
    out = [t for t in tenants if t]
    if not out:
        raise InputError("tenants is empty: give a list of tenant ids, or ['all'].")
    if any(not isinstance(t, str) for t in out):
        raise InputError(f"tenants must be strings, got {out!r}")
    return [ALL] if ALL in out else out


def selects_any(tenancy: Tenancy, tenants: list[str], *versions: Mapping[str, Any] | None) -> bool:
    """Is an item selected when ANY of its versions (restored, live, key) belongs to a selected tenant?

    An incident may move an item between tenants (a non-key tenant attribute rewritten): an item moved out
    of a selected tenant must be put back, and one moved into it must be looked at too.
    """
    if ALL in tenants or not tenancy.configured:
        return True
    return any(selects(tenants, tenancy.tenant_of(v)) for v in versions if v)


def selects(tenants: list[str], tenant: str | None) -> bool:
    """Does a tenants filter select this tenant? ``all`` selects every item, even one without a tenant."""
    return ALL in tenants or (tenant is not None and tenant in tenants)
