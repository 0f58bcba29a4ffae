"""IAM ``Condition`` blocks evaluated as AWS evaluates them, and never more leniently than AWS.

moto evaluates only ``StringEquals`` on ``sts:ExternalId`` and treats every other condition as met, so an Allow
meant for one policy ARN (``iam:PolicyARN``) or one S3 prefix (``s3:prefix``) allowed everything: a
least-privilege policy looked safe in rehearsal and was never tested. Here a condition is checked against the
request's context for the keys the sandbox knows (:data:`KNOWN_KEYS`), with AWS's rules: operators AND-ed, keys
within one operator AND-ed, a key's values OR-ed (NOR for the negated ``...Not...`` operators), a key absent
from the request false for the positive operators and true for the negated ones, ``...IfExists`` true when the
key is absent, ``Null``, ``ForAnyValue:`` / ``ForAllValues:``. A condition the sandbox cannot evaluate (an
unknown key such as ``dynamodb:LeadingKeys`` or ``aws:SourceIp``, or an operator it does not implement) is
strict both ways: an Allow under it does not apply and a Deny under it does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

#: The context keys the sandbox fills in from each request (lower case: condition keys are case-insensitive).
KNOWN_KEYS = frozenset({"aws:requestedregion", "iam:policyarn", "s3:prefix", "sts:externalid"})

#: The condition context of the request being authorised (set per request; moto serves each in a thread).
REQUEST_CONTEXT: ContextVar[dict[str, list[str]] | None] = ContextVar("iam_request_context", default=None)


def request_context(handler: Any, param: Callable[[Any, str], str | None]) -> dict[str, list[str]]:
    """The condition keys of one moto request handler (``param`` reads one request parameter)."""
    context: dict[str, list[str]] = {}
    region = getattr(handler, "region", None)
    if region:
        context["aws:requestedregion"] = [region]
    for key, name in (("iam:policyarn", "PolicyArn"), ("sts:externalid", "ExternalId")):
        value = param(handler, name)
        if value is not None:
            context[key] = [value]
    query = getattr(handler, "querystring", None)
    if isinstance(query, dict) and "prefix" in query:  # S3 ListObjects(V2)
        values = query["prefix"]
        context["s3:prefix"] = [str(v) for v in (values if isinstance(values, list) else [values])]
    return context


def evaluate(condition: dict[str, Any], context: dict[str, list[str]]) -> bool | None:
    """True when every operator holds, False when one does not, None when one cannot be evaluated here."""
    return _all([_operator(op, block, context) for op, block in condition.items()])


def _operator(name: str, block: Any, context: dict[str, list[str]]) -> bool | None:
    qualifier, _, op = name.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    if not isinstance(block, dict) or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        return None
    verdicts: list[bool | None] = []
    for key, expected in block.items():
        key = key.lower()
        if key not in KNOWN_KEYS:
            verdicts.append(None)
            continue
        wanted = [str(v).lower() if isinstance(v, bool) else str(v) for v in _listed(expected)]
        present = context.get(key)
        if op == "Null":  # "true": the key must be absent; "false": present
            flags = {w.lower() for w in wanted}
            known = flags in ({"true"}, {"false"})
            verdicts.append((present is None) == (flags == {"true"}) if known else None)
            continue
        negated = op.startswith(_NEGATABLE) and "Not" in op
        test = _TESTS.get(op.replace("Not", "", 1) if negated else op)
        if test is None:
            verdicts.append(None)
        elif present is None:
            verdicts.append(if_exists or negated or qualifier == "ForAllValues")
        else:
            matches = [any(test(w, value) for w in wanted) for value in present]
            holds = all(matches) if qualifier == "ForAllValues" else any(matches)
            verdicts.append(not holds if negated else holds)
    return _all(verdicts)


def _all(verdicts: list[bool | None]) -> bool | None:
    """AND of verdicts: False if any is False, else None if any is unknown, else True."""
    if False in verdicts:
        return False
    return None if None in verdicts else True


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str) -> bool:
    """IAM's wildcards, case-sensitive: ``*`` any run of characters, ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """Each of an ARN's six colon-separated parts is matched on its own (a wildcard does not cross a colon
    except in the last part, the resource, which may itself hold colons)."""
    wanted, got = pattern.split(":", 5), value.split(":", 5)
    return len(wanted) == len(got) == 6 and all(_glob(w, g) for w, g in zip(wanted, got, strict=True))


_NEGATABLE = ("String", "Arn")
_TESTS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda want, got: want == got,
    "StringEqualsIgnoreCase": lambda want, got: want.lower() == got.lower(),
    "StringLike": _glob,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": lambda want, got: want.lower() == got.lower(),
}


def condition_holds(statement: dict[str, Any], context: dict[str, list[str]]) -> bool:
    """Whether a statement's Condition lets it apply to a request with ``context`` (strict when it cannot tell)."""
    condition = statement.get("Condition")
    if not condition:
        return True
    verdict = evaluate(condition, context) if isinstance(condition, dict) else None
    if verdict is None:
        return statement.get("Effect") == "Deny"  # unknown: a Deny applies, an Allow does not
    return verdict


def evaluate_conditions(param: Callable[[Any, str], str | None]) -> None:
    """Make moto evaluate statements' conditions with this module's rules, in the request's context."""
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action
    permitted = IAMPolicyStatement.is_action_permitted

    def _authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        with in_context(request_context(self, param)):
            authorize(self, iam_request_cls, resource)

    def _permitted(
        self: Any, action: str, resource: str = "*", principal: Any = None, values: Any = None
    ) -> Any:
        statement = self._statement
        if not isinstance(statement, dict) or not statement.get("Condition"):
            return permitted(self, action, resource, principal, values)
        # moto's own values for a trust policy (sts:ExternalId on AssumeRole)
        extra = {k.lower(): [v] for k, v in (values or {}).items()}
        if not condition_holds(statement, {**(REQUEST_CONTEXT.get() or {}), **extra}):
            return PermissionResult.NEUTRAL
        unconditional = IAMPolicyStatement({k: v for k, v in statement.items() if k != "Condition"})
        return permitted(unconditional, action, resource, principal, values)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authorize
    IAMPolicyStatement.is_action_permitted = _permitted


@contextmanager
def in_context(context: dict[str, list[str]]) -> Iterator[None]:
    """Authorise with ``context`` as the request's condition keys, then restore what was there."""
    token = REQUEST_CONTEXT.set(context)
    try:
        yield
    finally:
        REQUEST_CONTEXT.reset(token)
