"""The read-only switch: an SSM parameter listing the tenants that must not write right now.

The parameter (default ``read-only-customers``, type StringList or String) holds comma-separated tenant ids;
``all`` puts every tenant in read-only mode, an empty value, ``none`` or ``-`` nobody; a JSON list is read too.
:func:`parse_tenants` is the one reader of that value: the contain and lift steps and the application's
``appkit.ReadOnlyGuard`` all use it, so the runbook and the application agree on who is read-only.
This module needs the standard library and boto3 only (appkit imports it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..aws import Aws, error_code, explain
from ..errors import InputError
from ..tenancy import ALL, normalize_tenants

if TYPE_CHECKING:
    from ..context import Context

NONE_VALUE = "none"
#: Entries that mean "nobody" (compared lower-case).
NOBODY = frozenset({"", NONE_VALUE, "-"})


def parse_tenants(value: str | None) -> list[str]:
    """The parameter's value as tenant ids in first-seen order: ``"t1,t2"``, ``"all"``, ``"none"``, a JSON list."""
    if value is None:
        return []
    text = value.strip()
    if text.startswith("["):
        try:
            items = [str(x) for x in json.loads(text)]
        except ValueError:
            items = text.strip("[]").split(",")
    else:
        items = text.split(",")
    return list(dict.fromkeys(t.strip() for t in items if t.strip().lower() not in NOBODY))


def validate_tenants(tenants: Iterable[str] | str | None) -> list[str]:
    """The tenants list, refusing values a StringList cannot hold."""
    out = normalize_tenants(tenants)
    bad = [t for t in out if "," in t or t.strip() != t or t.lower() == NONE_VALUE]
    if bad:
        raise InputError(
            f"tenant ids {bad!r} cannot go into a StringList parameter (no commas, no surrounding "
            f"spaces, not {NONE_VALUE!r})."
        )
    return out


# -- the read-only parameter -----------------------------------------------------------------------------
def get_parameter(aws: Aws, name: str) -> dict[str, Any]:
    """``{"exists", "value", "type"}`` of an SSM parameter (value and type None when it does not exist)."""
    try:
        p = aws.ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return {"exists": False, "value": None, "type": None}
        raise explain(exc, "ssm:GetParameter", name) from exc
    return {"exists": True, "value": p["Value"], "type": p["Type"]}


def tenants_in(value: str | None) -> list[str]:
    """The tenants the parameter's value makes read-only, as the application reads it (see parse_tenants)."""
    return parse_tenants(value)


def merge_tenants(*lists: Iterable[str]) -> list[str]:
    """Union in first-seen order; ``all`` absorbs everything."""
    out: list[str] = []
    for lst in lists:
        for t in lst:
            if t not in out:
                out.append(t)
    return [ALL] if ALL in out else out


def put_parameter(ctx: Context, name: str, value: str, type_: str, *, reason: str) -> None:
    """Write the parameter (overwrite) and record it."""
    try:
        ctx.aws.ssm.put_parameter(Name=name, Value=value, Type=type_, Overwrite=True)
    except ClientError as exc:
        ctx.record("ssm:PutParameter", "failed", parameter=name, value=value, error=str(exc))
        raise explain(exc, "ssm:PutParameter", name) from exc
    ctx.record("ssm:PutParameter", parameter=name, value=value, type=type_, reason=reason)
