"""IAM as the runbook uses it: the application role, the deny policy, the policies attached to a role."""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..aws import Aws, error_code, explain
from ..errors import InputError
from .policies import covers_all_writes, merged_deny_policy, policy_arn

if TYPE_CHECKING:
    from ..context import Context


# -- names -----------------------------------------------------------------------------------------------
def role_name_of(name_or_arn: str) -> str:
    """A role name from a name or an ARN (``arn:aws:iam::1:role/path/name`` gives ``name``)."""
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


def require_role(aws: Aws, app_role_name: str | None) -> tuple[str, str]:
    """(name, ARN) of the application role, or an InputError saying how to name it."""
    if not app_role_name or not isinstance(app_role_name, str):
        raise InputError(
            "app_role_name is required: the IAM role your application runs as (its writes get denied)."
        )
    name = role_name_of(app_role_name)
    try:
        arn = aws.iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            raise InputError(
                f"IAM role {name!r} does not exist in account {aws.account_id}: set app_role_name "
                "to the role your application runs as.",
                cause=exc,
            ) from exc
        raise explain(exc, "iam:GetRole", name) from exc
    return name, arn


def caller_role_name(caller_arn: str) -> str | None:
    """The role name of an assumed-role caller ARN, else None."""
    if ":assumed-role/" in caller_arn:
        return caller_arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
    return None


def refuse_own_role(aws: Aws, app_role_name: str) -> None:
    """Denying writes to the identity running the runbook would block the recovery itself."""
    if caller_role_name(aws.caller_arn) == app_role_name:
        raise InputError(
            f"the runbook runs as {aws.caller_arn}, which is the application role {app_role_name!r}: denying "
            "its writes would stop the recovery too. Run the runbook as a separate recovery role (01_prepare "
            "prints its policy)."
        )


# -- the deny policy -------------------------------------------------------------------------------------
def _document(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        return json.loads(urllib.parse.unquote(raw))
    return raw


def get_policy_document(aws: Aws, arn: str) -> dict[str, Any] | None:
    """The default version's document of a managed policy, or None when the policy does not exist."""
    try:
        policy = aws.iam.get_policy(PolicyArn=arn)["Policy"]
        version = aws.iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise explain(exc, "iam:GetPolicy", arn) from exc
    return _document(version["PolicyVersion"]["Document"])


def ensure_deny_policy(
    ctx: Context, deny_policy_name: str, live_table_arn: str
) -> tuple[str, str, list[str]]:
    """Make the deny policy exist and deny every write action on the table.

    Returns (policy ARN, what was done: ``created`` / ``updated`` / ``unchanged``, actions it missed before).
    An existing policy keeps the resources it already denied; a new default version is created when it
    misses an action or the table (the oldest non-default version is deleted when IAM's limit of 5 is hit).
    """
    aws = ctx.aws
    arn = policy_arn(deny_policy_name, aws.account_id, live_table_arn.split(":")[1])
    existing = get_policy_document(aws, arn)
    if existing is None:
        doc = merged_deny_policy(None, live_table_arn)
        try:
            arn = aws.iam.create_policy(
                PolicyName=deny_policy_name,
                PolicyDocument=json.dumps(doc),
                Description="Denies every DynamoDB write action (recovery runbook read-only mode)",
            )["Policy"]["Arn"]
        except ClientError as exc:
            ctx.record("iam:CreatePolicy", "failed", policy=deny_policy_name, error=str(exc))
            raise explain(exc, "iam:CreatePolicy", deny_policy_name) from exc
        ctx.record("iam:CreatePolicy", policy=arn, document=doc)
        return arn, "created", list(covers_all_writes({}, live_table_arn))
    missing = covers_all_writes(existing, live_table_arn)
    if not missing:
        return arn, "unchanged", []
    doc = merged_deny_policy(existing, live_table_arn)
    try:
        _create_default_version(aws, arn, doc)
    except ClientError as exc:
        ctx.record("iam:CreatePolicyVersion", "failed", policy=arn, error=str(exc))
        raise explain(exc, "iam:CreatePolicyVersion", arn) from exc
    ctx.record("iam:CreatePolicyVersion", policy=arn, added_actions=missing, document=doc)
    return arn, "updated", missing


def _create_default_version(aws: Aws, arn: str, doc: dict[str, Any]) -> None:
    try:
        aws.iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc), SetAsDefault=True)
    except ClientError as exc:
        if error_code(exc) != "LimitExceeded":
            raise
        versions = aws.iam.list_policy_versions(PolicyArn=arn)["Versions"]
        old = sorted((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        aws.iam.delete_policy_version(PolicyArn=arn, VersionId=old[0]["VersionId"])
        aws.iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc), SetAsDefault=True)


def attached_policy_arns(aws: Aws, role_name: str) -> list[str]:
    """ARNs of the managed policies attached to a role."""
    out: list[str] = []
    try:
        for page in aws.iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
            out += [p["PolicyArn"] for p in page["AttachedPolicies"]]
    except ClientError as exc:
        raise explain(exc, "iam:ListAttachedRolePolicies", role_name) from exc
    return out
