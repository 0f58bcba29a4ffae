"""The six steps run as the recovery role and nothing more: every action it is granted is needed, and taking one
away stops the runbook at the step that needs it, naming the action.

An administrator stages the demo incident and does the one-time setup (01_prepare with apply=True, which creates
the recovery role with the policy 01_prepare prints); the runbook then runs with only the role's temporary
credentials in the kernels' environment.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from recovery_helpers import demo
from recovery_helpers.prepare import RECOVERY_POLICY_NAME
from recovery_helpers.resources import policies
from recovery_helpers.runner import NOTEBOOKS, STEPS
from tests import least_privilege_support as lp
from tests.conftest import table_names

_prefixes = itertools.count()


def _prefix(kind: str) -> str:
    return f"lp{kind}{next(_prefixes)}"


@pytest.fixture(scope="module")
def full_run(sandbox, tmp_path_factory):
    world = lp.stage(sandbox, tmp_path_factory.mktemp("least-privilege"), _prefix("full"))
    result = world.run()
    return world, result


def test_the_whole_runbook_runs_as_the_recovery_role(full_run):
    world, result = full_run
    assert result.ok, result.summary()
    outcome = demo.check(world.admin, world.incident)
    assert outcome.ok, outcome.lines()

    # The role is the policy 01_prepare printed for these parameters, and it is what the setup created.
    created = world.admin.iam.get_role_policy(RoleName=world.role_name, PolicyName=RECOVERY_POLICY_NAME)
    assert created["PolicyDocument"] == lp.recovery_policy(world.admin, world.incident)
    assert _printed_policy(world.run_dir / NOTEBOOKS["prepare"]) == created["PolicyDocument"]

    # Every call was made as the recovery role, and none was refused (a tolerated denial hides a missing grant).
    role_session = f"arn:aws:sts::{world.admin.account_id}:assumed-role/{world.role_name}/on-call"
    made = lp.calls(world.run_dir)
    assert {c["who"] for c in made if c["operation"] != "GetCallerIdentity"} == {role_session}
    refused = [c for c in made if "Denied" in str(c.get("error"))]
    assert not refused
    timeline = json.loads((world.run_dir / "incident.json").read_text())["timeline"]
    assert {e["who"] for e in timeline if not e["action"].startswith("run step")} == {role_session}


def _printed_policy(notebook: Path) -> dict:
    cells = json.loads(notebook.read_text())["cells"]
    cell = next(c for c in cells if "recovery_role_policy_json" in "".join(c["source"]))
    # printed (stdout), or shown folded (archive.steps.show_policy: the JSON is the output's text/plain)
    texts = [
        o["text"] if o.get("name") == "stdout" else o.get("data", {}).get("text/plain", "")
        for o in cell["outputs"]
    ]
    return json.loads("".join(t if isinstance(t, str) else "".join(t) for t in texts))


def test_every_granted_action_is_used_or_documented(full_run):
    world, result = full_run
    assert result.ok, result.summary()
    account, region = world.admin.account_id, world.admin.region
    used = [p for call in lp.calls(world.run_dir) for p in policies.call_permissions(call, account, region)]
    # The policy with every option (exports too): whatever this run did not need must have a documented reason.
    everything = lp.recovery_policy(
        world.admin, world.incident, export_bucket=f"{world.params['incident_id']}-x"
    )
    unused = policies.unused_grants(everything, used)
    undocumented = [(sid, a) for sid, a in unused if a not in policies.GRANTED_FOR_OTHER_PATHS.get(sid, {})]
    assert not undocumented, f"granted, never used, no reason given: {undocumented}"
    # The allow-list names only what the policy grants, in the statement that grants it...
    granted = {(s["Sid"], a) for s in everything["Statement"] for a in _actions(s)}
    listed = {(sid, a) for sid, reasons in policies.GRANTED_FOR_OTHER_PATHS.items() for a in reasons}
    assert listed <= granted, listed - granted
    # Setup-only actions stay with the administrator.
    assert not set(policies.SETUP_ONLY_ACTIONS) & policies.recovery_role_actions(everything)


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


@pytest.mark.parametrize(
    "action, sid, step",
    [
        ("ssm:PutParameter", None, "contain"),
        ("iam:AttachRolePolicy", None, "contain"),
        ("dynamodb:RestoreTableToPointInTime", None, "restore"),
        # An item write: AWS authorises a restore through item writes on its target table. (The patch's own
        # writes on the live table are used by the full run; cutting them stops the run at `patch` the same way.)
        ("dynamodb:PutItem", "RestoredTables", "restore"),
    ],
)
def test_without_one_action_the_run_stops_at_the_step_that_needs_it(sandbox, tmp_path, action, sid, step):
    # The policy as printed, minus one action, on the role the setup created.
    world = lp.stage(sandbox, tmp_path, _prefix("cut"), orders_per_tenant=8, cut=(action, sid))
    result = world.run()

    assert not result.ok and result.failed_step == step, result.summary()
    assert action in (result.failed.error or ""), result.failed.error
    ran = [s.step for s in result.steps]
    assert ran == list(STEPS[: STEPS.index(step) + 1])
    for later in STEPS[STEPS.index(step) + 1 :]:
        assert not (world.run_dir / NOTEBOOKS[later]).exists()
    if step == "restore":
        tables = table_names(world.admin.dynamodb)
        assert not [t for t in tables if t.startswith(f"{world.incident.table_name}-restored")]


# -- the conditions of the recovery role: the sandbox evaluates them as AWS does (sandbox/iam_conditions.py) --
def test_the_recovery_role_may_attach_only_the_deny_policy(sandbox, aws, unique_name):
    account = aws.account_id
    app, deny, other = f"app-{unique_name}"[:60], f"deny-{unique_name}"[:60], f"other-{unique_name}"[:60]
    trust = json.dumps(policies.account_trust_policy(account))
    aws.iam.create_role(RoleName=app, AssumeRolePolicyDocument=trust)
    for name in (deny, other):
        aws.iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(policies.deny_write_policy()))
    recovery = _role(
        aws,
        f"rec-{unique_name}"[:60],
        policies.recovery_role_policy("t", account, aws.region, app_role_name=app, deny_policy_name=deny),
    )
    recovery.iam.attach_role_policy(RoleName=app, PolicyArn=policies.policy_arn(deny, account))
    with pytest.raises(ClientError) as refused:
        recovery.iam.attach_role_policy(RoleName=app, PolicyArn=policies.policy_arn(other, account))
    assert refused.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")


def test_the_recovery_role_can_follow_its_export(sandbox, aws, unique_name):
    from tests.conftest import create_table

    table = create_table(aws.dynamodb, unique_name)
    bucket = f"exp-{unique_name}".lower()[:60]
    aws.s3.create_bucket(Bucket=bucket)
    recovery = _role(
        aws,
        f"rec-{unique_name}"[:60],
        policies.recovery_role_policy(table, aws.account_id, aws.region, export_bucket=bucket),
    )
    arn = aws.dynamodb.describe_table(TableName=table)["Table"]["TableArn"]
    export = recovery.dynamodb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket=bucket, S3Prefix="x", ExportFormat="DYNAMODB_JSON"
    )["ExportDescription"]
    assert recovery.dynamodb.describe_export(ExportArn=export["ExportArn"])["ExportDescription"]["ExportArn"]


def test_the_recovery_role_can_check_a_backup_before_restoring_it(sandbox, aws, unique_name):
    from tests.conftest import create_table

    table = create_table(aws.dynamodb, unique_name)
    backup = aws.dynamodb.create_backup(TableName=table, BackupName="before-incident")["BackupDetails"]
    recovery = _role(
        aws, f"rec-{unique_name}"[:60], policies.recovery_role_policy(table, aws.account_id, aws.region)
    )
    described = recovery.dynamodb.describe_backup(BackupArn=backup["BackupArn"])["BackupDescription"]
    assert described["BackupDetails"]["BackupArn"] == backup["BackupArn"]


def _role(aws, name: str, doc: dict):
    aws.iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(policies.account_trust_policy(aws.account_id))
    )
    aws.iam.put_role_policy(RoleName=name, PolicyName=RECOVERY_POLICY_NAME, PolicyDocument=json.dumps(doc))
    return aws.assume_role(policies.role_arn(name, aws.account_id), "on-call")
