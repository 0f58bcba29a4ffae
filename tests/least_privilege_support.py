"""The runbook as the recovery role: an administrator stages the world and does the one-time setup, then the six
steps run with only the recovery role's temporary credentials (the test files on least privilege and leaks)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from recovery_helpers import demo
from recovery_helpers.aws import Aws
from recovery_helpers.context import open_context
from recovery_helpers.prepare import RECOVERY_POLICY_NAME, check_readiness
from recovery_helpers.resources import policies
from recovery_helpers.runner import RunResult, run_steps


@dataclass
class World:
    """A staged demo incident, its administrator, and the recovery role made for it."""

    sandbox: Any
    admin: Aws
    incident: demo.DemoIncident
    params: dict[str, Any]
    role_name: str
    credentials: dict[str, str]
    base: Path

    @property
    def run_dir(self) -> Path:
        return Path(self.params["runs_dir"]) / self.params["incident_id"]

    @property
    def role_arn(self) -> str:
        return policies.role_arn(self.role_name, self.admin.account_id)

    def env(self) -> dict[str, str]:
        """What a kernel needs to act as the recovery role, and nothing of the administrator."""
        return {
            "AWS_ACCESS_KEY_ID": self.credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": self.credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": self.credentials["SessionToken"],
            "AWS_ENDPOINT_URL": self.sandbox.endpoint_url,
            "AWS_DEFAULT_REGION": self.sandbox.region,
        }

    def run(self, steps: list[str] | None = None, **overrides: Any) -> RunResult:
        return run_steps({**self.params, **overrides}, steps, env=self.env(), log=None)


def admin_of(sandbox: Any) -> Aws:
    """The sandbox administrator (who stages the world and does the one-time setup)."""
    session = boto3.session.Session(
        aws_access_key_id=sandbox.admin_access_key_id,
        aws_secret_access_key=sandbox.admin_secret_access_key,
        region_name=sandbox.region,
    )
    return Aws(region=sandbox.region, endpoint_url=sandbox.endpoint_url, session=session)


def recovery_policy(admin: Aws, incident: demo.DemoIncident, **options: Any) -> dict[str, Any]:
    """The recovery-role policy exactly as 01_prepare prints it for the demo's parameters (and its change
    record: the log group and the audit table)."""
    names = incident.resources
    return policies.recovery_role_policy(
        incident.table_name,
        admin.account_id,
        admin.region,
        app_role_name=names.app_role,
        read_only_parameter=names.read_only_parameter,
        deny_policy_name=names.deny_policy,
        log_group=names.log_group,
        audit_table_name=names.audit_table,
        **options,
    )


def without(doc: dict[str, Any], action: str, sid: str | None = None) -> dict[str, Any]:
    """The policy with ``action`` removed from its Allow statements (only from ``sid`` if given); statements
    left empty are dropped."""
    out = json.loads(json.dumps(doc))
    kept = []
    for statement in out["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if sid is None or statement.get("Sid") == sid:
            actions = [a for a in actions if a != action]
        if actions:
            statement["Action"] = actions
            kept.append(statement)
    out["Statement"] = kept
    return out


def stage(
    sandbox: Any,
    base: Path,
    prefix: str,
    *,
    cut: tuple[str, str | None] | None = None,
    orders_per_tenant: int = 25,
    **param_overrides: Any,
) -> World:
    """Stage the demo incident (as the administrator), do the one-time setup, and assume the recovery role.

    The setup is 01_prepare with ``apply=True`` run by the administrator: it enables PITR, creates the read-only
    parameter and the deny policy, and creates the recovery role with the policy it prints (trusting the
    account). ``cut=(action, sid)`` then takes one action away from that policy (from statement ``sid`` only,
    or from all). The run's parameters are
    the demo's, plus the change record the demo world has (its log group and audit table) as 04_diff sources.
    """
    admin = admin_of(sandbox)
    incident = demo.stage(
        admin,
        base / "world",
        orders_per_tenant=orders_per_tenant,
        names=demo.Names.for_prefix(prefix),
        clock=sandbox.clock.now,
    )
    names = incident.resources
    role = f"{prefix}-recovery"
    setup = open_context(
        f"{prefix}-setup",
        incident.table_name,
        sandbox.region,
        sandbox.endpoint_url,
        str(base / "setup"),
        aws=admin,
    )
    report = check_readiness(
        setup,
        app_role_name=names.app_role,
        read_only_parameter=names.read_only_parameter,
        deny_policy_name=names.deny_policy,
        apply=True,
        recovery_role_name=role,
        log_group=names.log_group,
        audit_table_name=names.audit_table,
    )
    assert report.row(f"recovery role {role!r}").ok
    if cut is not None:
        doc = recovery_policy(admin, incident)
        assert cut[0] in policies.recovery_role_actions(doc), f"{cut[0]} is not granted: nothing to cut"
        admin.iam.put_role_policy(
            RoleName=role, PolicyName=RECOVERY_POLICY_NAME, PolicyDocument=json.dumps(without(doc, *cut))
        )
    credentials = admin.sts.assume_role(
        RoleArn=policies.role_arn(role, admin.account_id), RoleSessionName="on-call"
    )["Credentials"]
    params = demo.demo_parameters(
        incident, incident_id=prefix, endpoint_url=sandbox.endpoint_url, runs_dir=str(base / "runs")
    )
    # At incident time 01_prepare only checks: the setup above already fixed what apply would fix.
    params.update(
        apply=False,
        log_group=names.log_group,
        audit_table_name=names.audit_table,
        impacted_source=["log_file", "cloudwatch_logs", "audit_table"],
    )
    params.update(param_overrides)
    return World(sandbox, admin, incident, params, role, dict(credentials), base)


def calls(run_dir: Path) -> list[dict[str, Any]]:
    """Every AWS call the runbook made (``aws-calls.jsonl``)."""
    path = run_dir / "aws-calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
