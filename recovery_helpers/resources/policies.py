"""IAM policy documents the runbook attaches or prints: the write-deny policy and the recovery role's policy.

Why these actions: a Deny of ``PutItem``/``UpdateItem``/``DeleteItem`` alone (the classic "DenyWrite" policy)
leaves ``BatchWriteItem`` and the PartiQL write actions open, and an application using them keeps corrupting
items while you recover. ``TransactWriteItems`` has no action of its own: AWS authorises each element through
``PutItem``/``UpdateItem``/``DeleteItem``/``ConditionCheckItem``, so denying the first three closes it.

``dynamodb:ConditionCheckItem`` is deliberately NOT denied: it cannot change data (it only evaluates a
condition inside a transaction, and a transaction that also writes needs a denied write action anyway).
Denying it would only break read paths such as ``TransactWriteItems`` made of condition checks, and
read-only transactions are exactly what an application in read-only mode may still use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Every IAM action through which an identity can change DynamoDB items.
WRITE_ACTIONS: tuple[str, ...] = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)

POLICY_VERSION = "2012-10-17"
DENY_SID = "RecoveryDenyWrite"

#: What AWS authorises on the TARGET table of RestoreTableToPointInTime / RestoreTableFromBackup, besides the
#: restore action on the source: the restore writes the items as the caller.
RESTORE_TARGET_ACTIONS: tuple[str, ...] = (
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
)


# -- ARNs ------------------------------------------------------------------------------------------------
def table_arn(table_name: str, account: str, region: str, partition: str = "aws") -> str:
    """The ARN of a DynamoDB table."""
    return f"arn:{partition}:dynamodb:{region}:{account}:table/{table_name}"


def role_arn(role_name: str, account: str, partition: str = "aws") -> str:
    """The ARN of an IAM role given its name (a path-qualified name like ``app/my-role`` keeps its path)."""
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def policy_arn(policy_name: str, account: str, partition: str = "aws") -> str:
    """The ARN of a customer-managed policy given its name."""
    return f"arn:{partition}:iam::{account}:policy/{policy_name}"


def parameter_arn(name: str, account: str, region: str, partition: str = "aws") -> str:
    """The ARN of an SSM parameter (``/a/b`` and ``a`` both give ``parameter/...``, no doubled slash)."""
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def partition_of(arn: str) -> str:
    """The partition of an ARN (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


# -- the deny policy -------------------------------------------------------------------------------------
def deny_write_policy(table_arns: str | Iterable[str] | None = None) -> dict[str, Any]:
    """A policy denying every DynamoDB write action on the given tables and their indexes (or on ``*``)."""
    if table_arns is None or table_arns == "*":
        resources: list[str] = ["*"]
    else:
        arns = [table_arns] if isinstance(table_arns, str) else list(table_arns)
        resources = []
        for arn in arns:
            if arn == "*":
                resources = ["*"]
                break
            for r in (arn, f"{arn}/index/*"):
                if r not in resources:
                    resources.append(r)
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": DENY_SID, "Effect": "Deny", "Action": list(WRITE_ACTIONS), "Resource": resources}
        ],
    }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one character; everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE if ignore_case else 0)


def action_matches(pattern: str, action: str) -> bool:
    """Does an IAM Action pattern (``dynamodb:*Item``, ``dynamodb:PartiQL*``, ``*``) cover ``action``?"""
    return bool(_wildcard(pattern, ignore_case=True).match(action))


def resource_matches(pattern: str, resource: str) -> bool:
    """Does an IAM Resource pattern cover ``resource`` (case-sensitive, ``*`` and ``?`` wildcards)?"""
    return bool(_wildcard(pattern, ignore_case=False).match(resource))


def _statements(policy_doc: Mapping[str, Any] | str) -> list[Mapping[str, Any]]:
    doc = json.loads(policy_doc) if isinstance(policy_doc, str) else policy_doc
    return [s for s in _as_list(doc.get("Statement")) if isinstance(s, Mapping)]


def statement_applies(statement: Mapping[str, Any], action: str, resource: str | None = None) -> bool:
    """Does a statement (either effect) apply to ``action`` on ``resource`` (None: any resource)?

    Statements with a ``Condition`` are treated as not applying: we cannot know the request context, and a
    conditional Deny is not a guarantee.
    """
    if statement.get("Condition"):
        return False
    if "NotAction" in statement:
        if any(action_matches(p, action) for p in _as_list(statement["NotAction"])):
            return False
    elif not any(action_matches(p, action) for p in _as_list(statement.get("Action"))):
        return False
    if resource is None:
        return True
    if "NotResource" in statement:
        return not any(resource_matches(p, resource) for p in _as_list(statement["NotResource"]))
    return any(resource_matches(p, resource) for p in _as_list(statement.get("Resource")))


def covers_all_writes(
    policy_doc: Mapping[str, Any] | str, table_arn: str | None = None, actions: Sequence[str] = WRITE_ACTIONS
) -> list[str]:
    """The write actions a policy fails to Deny (on ``table_arn`` if given); empty means it covers them all.

    Understands wildcards (``dynamodb:*``, ``dynamodb:*Item``, ``dynamodb:PartiQL*``), NotAction and
    NotResource. A Deny with a Condition does not count (it may not apply when it matters).
    """
    denies = [s for s in _statements(policy_doc) if s.get("Effect") == "Deny"]
    return [a for a in actions if not any(statement_applies(s, a, table_arn) for s in denies)]


def allows(policy_doc: Mapping[str, Any] | str, action: str, resource: str | None = None) -> bool:
    """Does a policy have an Allow statement (without conditions) for ``action`` on ``resource``?"""
    return any(
        s.get("Effect") == "Allow" and statement_applies(s, action, resource) for s in _statements(policy_doc)
    )


def deny_resources(policy_doc: Mapping[str, Any] | str) -> list[str]:
    """The Resource entries of a policy's Deny statements (to keep them when the policy is rewritten)."""
    out: list[str] = []
    for s in _statements(policy_doc):
        if s.get("Effect") == "Deny":
            for r in _as_list(s.get("Resource")):
                if isinstance(r, str) and r not in out:
                    out.append(r)
    return out


def merged_deny_policy(existing: Mapping[str, Any] | str | None, table_arn: str) -> dict[str, Any]:
    """A deny policy covering every write action on ``table_arn`` plus every resource ``existing`` denied."""
    resources = deny_resources(existing) if existing else []
    if "*" in resources:
        return deny_write_policy("*")
    base = [r for r in resources if not r.endswith("/index/*")]
    if table_arn not in base:
        base.append(table_arn)
    return deny_write_policy(base)


# -- the recovery role's policy --------------------------------------------------------------------------
def account_trust_policy(account: str, partition: str = "aws") -> dict[str, Any]:
    """A trust policy letting identities of ``account`` (that are allowed sts:AssumeRole) assume a role."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def recovery_role_policy(
    table_name: str,
    account: str,
    region: str,
    *,
    app_role_name: str | None = None,
    read_only_parameter: str = "read-only-customers",
    deny_policy_name: str = "DenyWrite",
    restored_table_names: Iterable[str] = (),
    log_group: str | None = None,
    audit_table_name: str | None = None,
    export_bucket: str | None = None,
    export_prefix: str | None = None,
    partition: str = "aws",
) -> dict[str, Any]:
    """Least privilege for the identity running the runbook: every action its six steps perform, and no more.

    Scoped to the live table, tables named ``<table>-restored-*`` (plus ``restored_table_names``), the
    read-only parameter, the deny policy and the application role. The one-time setup is not in it: creating
    the recovery role, the audit table and the live table's stream is done by an administrator running
    ``01_prepare`` with ``apply=True`` (see ``SETUP_ONLY_ACTIONS``). Every action here is either used by the
    demo's full run as this role (``tests/test_least_privilege.py`` compares with ``aws-calls.jsonl``) or
    listed in ``GRANTED_FOR_OTHER_PATHS`` with the path that needs it.
    """
    live = table_arn(table_name, account, region, partition)
    restored = [f"{live}-restored-*"] + [
        table_arn(n, account, region, partition) for n in restored_table_names
    ]
    deny_arn = policy_arn(deny_policy_name, account, partition)
    statements: list[dict[str, Any]] = [
        {
            # 01 readiness, 03 restore, 04 diff (reads), 05 patch (conditional writes after backup reads).
            "Sid": "LiveTable",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeTable",
                "dynamodb:DescribeContinuousBackups",
                "dynamodb:UpdateContinuousBackups",
                "dynamodb:RestoreTableToPointInTime",
                "dynamodb:ExportTableToPointInTime",
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            ],
            "Resource": [live, f"{live}/index/*"],
        },
        {
            # AWS authorises a restore through RESTORE_TARGET_ACTIONS on the target; 04 reads it (BatchGetItem);
            # 03 tags it; 06 lift may delete it.
            "Sid": "RestoredTables",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeTable",
                "dynamodb:BatchGetItem",
                *RESTORE_TARGET_ACTIONS,
                "dynamodb:TagResource",
                "dynamodb:ListTagsOfResource",
                "dynamodb:DeleteTable",
            ],
            "Resource": restored + [f"{r}/index/*" for r in restored],
        },
        {
            # Restore from an on-demand backup of the live table (03 with source="backup") and exports.
            "Sid": "BackupsAndExports",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeBackup",
                "dynamodb:RestoreTableFromBackup",
                "dynamodb:DescribeExport",
            ],
            "Resource": [f"{live}/backup/*", f"{live}/export/*"],
        },
        {
            # Finding the backup_arn for 03 (source="backup"); ListBackups takes no resource ARN.
            "Sid": "ListOnly",
            "Effect": "Allow",
            "Action": ["dynamodb:ListBackups"],
            "Resource": "*",
        },
        {
            # 01 creates the parameter, 02 sets it, 06 puts the previous value back (or deletes it).
            "Sid": "ReadOnlyParameter",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter"],
            "Resource": parameter_arn(read_only_parameter, account, region, partition),
        },
        {
            # 01 creates/updates the deny policy; a new default version may need an old one deleted (limit 5).
            "Sid": "DenyPolicy",
            "Effect": "Allow",
            "Action": [
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:ListPolicyVersions",
                "iam:CreatePolicy",
                "iam:CreatePolicyVersion",
                "iam:DeletePolicyVersion",
            ],
            "Resource": deny_arn,
        },
    ]
    if app_role_name:
        app_arn = role_arn(app_role_name, account, partition)
        statements += [
            {
                # 01 inspects the app role; 02/06 verify containment by simulation when AssumeRole is refused.
                "Sid": "InspectAppRole",
                "Effect": "Allow",
                "Action": [
                    "iam:GetRole",
                    "iam:ListAttachedRolePolicies",
                    "iam:ListRolePolicies",
                    "iam:GetRolePolicy",
                    "iam:SimulatePrincipalPolicy",
                ],
                "Resource": app_arn,
            },
            {
                # 02 attaches and 06 detaches the deny policy, and only that policy.
                "Sid": "ContainAppRole",
                "Effect": "Allow",
                "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                "Resource": app_arn,
                "Condition": {"ArnEquals": {"iam:PolicyARN": deny_arn}},
            },
            {
                # 02/06 probe the write paths as the application sees them.
                "Sid": "ProbeAsAppRole",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": app_arn,
            },
            {
                # 01 reads the app role's attached managed policies to find the one allowing writes.
                "Sid": "ReadAttachedPolicies",
                "Effect": "Allow",
                "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"],
                "Resource": [
                    f"arn:{partition}:iam::{account}:policy/*",
                    f"arn:{partition}:iam::aws:policy/*",
                ],
            },
        ]
    if log_group:
        lg = f"arn:{partition}:logs:{region}:{account}:log-group:{log_group}"
        statements += [
            {
                # 04 reads the change log (impacted_source="cloudwatch_logs").
                "Sid": "ChangeLog",
                "Effect": "Allow",
                "Action": ["logs:FilterLogEvents"],
                "Resource": [lg, f"{lg}:*"],
            },
            {
                # 01 checks the log group's retention (DescribeLogGroups is listed by name prefix).
                "Sid": "ChangeLogLookup",
                "Effect": "Allow",
                "Action": ["logs:DescribeLogGroups"],
                "Resource": "*",
            },
        ]
    if audit_table_name:
        audit = table_arn(audit_table_name, account, region, partition)
        statements += [
            {
                # 01 checks the audit table; 04 queries it (by tenant, or by hour on its index). Creating it
                # and turning on the live table's stream are the one-time setup's (SETUP_ONLY_ACTIONS).
                "Sid": "AuditTable",
                "Effect": "Allow",
                "Action": ["dynamodb:DescribeTable", "dynamodb:Query"],
                "Resource": [audit, f"{audit}/index/*"],
            },
        ]
    if export_bucket:
        prefix = (export_prefix or "").strip("/")
        objects = f"arn:{partition}:s3:::{export_bucket}/{prefix + '/' if prefix else ''}*"
        list_stmt: dict[str, Any] = {
            "Sid": "ExportList",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:{partition}:s3:::{export_bucket}",
        }
        if prefix:
            list_stmt["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix}/*", prefix]}}
        statements += [
            {
                # ExportTableToPointInTime writes as the caller; 04 reads the export back.
                "Sid": "ExportObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"],
                "Resource": objects,
            },
            list_stmt,
        ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def recovery_role_actions(policy_doc: Mapping[str, Any]) -> set[str]:
    """Every action an Allow statement of the policy names (for reviews and tests)."""
    out: set[str] = set()
    for s in _statements(policy_doc):
        if s.get("Effect") == "Allow":
            out.update(_as_list(s.get("Action")))
    return out


# -- why each action is granted ----------------------------------------------------------------------------
#: Actions of the recovery-role policy that the demo's full run (tests/test_least_privilege.py) does not use,
#: by statement, with the path that needs them. Every other granted action is used by that run.
GRANTED_FOR_OTHER_PATHS: dict[str, dict[str, str]] = {
    "LiveTable": {
        "dynamodb:UpdateContinuousBackups": "01_prepare apply=True on a table found without PITR at incident "
        "start: enabling it at once makes every later write restorable (the setup normally did it)",
        "dynamodb:ExportTableToPointInTime": "04_diff impacted_source='incremental_export'",
        "dynamodb:GetItem": "05_patch with read_batch_size=1 reads each live item with GetItem",
        "dynamodb:Query": "04_diff impacted_source='updated_attribute' queries the live table's index on it",
    },
    "BackupsAndExports": {
        "dynamodb:DescribeBackup": "03_restore source='backup' checks the backup (table, status, time)",
        "dynamodb:RestoreTableFromBackup": "03_restore source='backup'",
        "dynamodb:DescribeExport": "04_diff impacted_source='incremental_export' waits for the export",
    },
    "ListOnly": {
        "dynamodb:ListBackups": "finding the backup_arn for 03_restore source='backup' "
        "(aws dynamodb list-backups --table-name ...) as this role",
    },
    "ReadOnlyParameter": {
        "ssm:DeleteParameter": "06_lift (full) when the parameter did not exist before 02_contain: it is "
        "deleted again, as it was",
    },
    "DenyPolicy": {
        "iam:CreatePolicy": "02_contain when the deny policy does not exist (the setup did not create it)",
        "iam:CreatePolicyVersion": "02_contain when the deny policy misses write actions or this table",
        "iam:ListPolicyVersions": "02_contain completing a deny policy that already has 5 versions",
        "iam:DeletePolicyVersion": "02_contain completing a deny policy that already has 5 versions "
        "(the oldest non-default version goes)",
    },
    "InspectAppRole": {
        "iam:SimulatePrincipalPolicy": "02_contain/06_lift verify by simulation when sts:AssumeRole of the "
        "application role is refused (its trust policy names only its service)",
    },
    "ReadAttachedPolicies": {
        "iam:GetPolicy": "01_prepare reads the application role's attached managed policies (the demo's app "
        "role has an inline policy only)",
        "iam:GetPolicyVersion": "01_prepare reads the application role's attached managed policies",
    },
    "ExportObjects": {
        "s3:GetObject": "04_diff impacted_source='incremental_export' reads the manifests and data files",
        "s3:PutObject": "AWS requires it of the identity calling ExportTableToPointInTime (DynamoDB writes the "
        "export on its behalf)",
        "s3:AbortMultipartUpload": "AWS requires it of the identity calling ExportTableToPointInTime",
        "s3:PutObjectAcl": "AWS requires it of the identity calling ExportTableToPointInTime",
    },
    "ExportList": {
        "s3:ListBucket": "without it S3 answers a missing export file with AccessDenied instead of NoSuchKey, "
        "hiding what went wrong with an export",
    },
}

#: What only the one-time setup (an administrator running 01_prepare with apply=True) does, and the recovery
#: role therefore does not get.
SETUP_ONLY_ACTIONS: dict[str, str] = {
    "iam:CreateRole": "creates the recovery role (recovery_role_name)",
    "iam:PutRolePolicy": "puts this policy on the recovery role",
    "dynamodb:CreateTable": "creates the audit table (audit_table_name)",
    "dynamodb:DescribeTimeToLive": "checks the audit table's TTL",
    "dynamodb:UpdateTimeToLive": "turns on the audit table's TTL",
    "dynamodb:UpdateTable": "turns on the live table's stream that feeds the audit table",
}


def _call_resource(call: Mapping[str, Any], account: str, region: str, partition: str) -> str | None:
    """The ARN IAM evaluates for one recorded call, when the record names it (None: not recorded)."""
    service, operation = call.get("service"), call.get("operation")
    if service == "dynamodb":
        if call.get("BackupArn"):
            return str(call["BackupArn"])
        if call.get("ExportArn"):
            return str(call["ExportArn"])
        arn = call.get("TableArn") or call.get("ResourceArn")
        if arn:
            return str(arn)
        name = call.get("SourceTableName") or call.get("TableName")
        if not name:
            return None
        arn = table_arn(str(name), account, region, partition)
        return f"{arn}/index/{call['IndexName']}" if call.get("IndexName") else arn
    if service == "iam":
        if call.get("RoleName"):
            return role_arn(str(call["RoleName"]), account, partition)
        if call.get("PolicyArn"):
            return str(call["PolicyArn"])
        if operation == "CreatePolicy" and call.get("PolicyName"):
            return policy_arn(str(call["PolicyName"]), account, partition)
        return None
    if service == "ssm" and call.get("Name"):
        return parameter_arn(str(call["Name"]), account, region, partition)
    if service == "sts" and call.get("RoleArn"):
        return str(call["RoleArn"])
    if service == "logs" and call.get("logGroupName"):
        return f"arn:{partition}:logs:{region}:{account}:log-group:{call['logGroupName']}:*"
    return None


def call_permissions(
    call: Mapping[str, Any], account: str, region: str, partition: str = "aws"
) -> list[tuple[str, str | None]]:
    """The (IAM action, resource ARN or None when not recorded) pairs AWS checks for one line of
    ``aws-calls.jsonl``; a restore also needs ``RESTORE_TARGET_ACTIONS`` on its target table."""
    service, operation = str(call.get("service")), str(call.get("operation"))
    if (service, operation) == ("sts", "GetCallerIdentity"):
        return []  # needs no permission
    if service == "dynamodb" and operation == "ExecuteStatement":
        return [("dynamodb:PartiQL*", None)]
    if service == "dynamodb" and operation in ("TransactWriteItems", "TransactGetItems"):
        return [("dynamodb:*Item", None)]  # authorised per element; elements are not recorded
    if service == "s3" and operation in ("ListObjects", "ListObjectsV2"):
        operation = "ListBucket"
    out: list[tuple[str, str | None]] = [
        (f"{service}:{operation}", _call_resource(call, account, region, partition))
    ]
    if service == "dynamodb" and operation in ("RestoreTableToPointInTime", "RestoreTableFromBackup"):
        target = call.get("TargetTableName")
        target_arn = table_arn(str(target), account, region, partition) if target else None
        out += [(action, target_arn) for action in RESTORE_TARGET_ACTIONS]
    return out


def unused_grants(
    policy_doc: Mapping[str, Any] | str, used: Iterable[tuple[str, str | None]]
) -> list[tuple[str, str]]:
    """(Sid, action) of every Allow that no used (action, resource) pair needed; a resource of None (not
    recorded) counts for every statement granting the action. Conditions are not evaluated."""
    used = list(used)
    out: list[tuple[str, str]] = []
    for statement in _statements(policy_doc):
        if statement.get("Effect") != "Allow":
            continue
        resources = _as_list(statement.get("Resource")) or ["*"]
        for granted in _as_list(statement.get("Action")):
            hit = any(
                (action_matches(granted, action) or action_matches(action, granted))
                and (resource is None or any(resource_matches(r, resource) for r in resources))
                for action, resource in used
            )
            if not hit:
                out.append((str(statement.get("Sid", "")), granted))
    return out
