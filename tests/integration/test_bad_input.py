"""The bad-input catalogue (docs/reference/bad-input.md): each row refused before anything is written, saying what to do.

Every test compares a snapshot of what the refused call could have changed (tables, items, PITR, SSM
parameters, IAM roles and policies, the run folder's files) before and after, against the session sandbox.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from recovery_helpers import diff, patch
from recovery_helpers.aws import Aws
from recovery_helpers.cli import main
from recovery_helpers.contain import contain
from recovery_helpers.context import open_context
from recovery_helpers.errors import (
    ApprovalError,
    InputError,
    NotReadyError,
    PermissionDeniedError,
    RecoveryError,
)
from recovery_helpers.incident import Incident
from recovery_helpers.items import canonical_json
from recovery_helpers.lift import lift
from recovery_helpers.prepare import check_readiness
from recovery_helpers.restore import restore_table
from recovery_helpers.runner import load_parameters, run_steps
from tests.conftest import create_table
from tests.containment_support import context as step_context
from tests.diff_support import END, START, twin_tables, write_lines
from tests.diff_support import context as diff_context

pytestmark = pytest.mark.timeout(120)


# -- what could have changed ---------------------------------------------------------------------------------
def _pages(client: Any, method: str, key: str, **kw: Any) -> list[Any]:
    return [x for page in client.get_paginator(method).paginate(**kw) for x in page[key]]


def aws_state(aws: Aws, tables: list[str]) -> dict[str, Any]:
    """Tables (names, items, PITR), SSM parameters, IAM roles and local policies (versions, attachments)."""
    ddb = aws.dynamodb
    names = sorted(_pages(ddb, "list_tables", "TableNames"))
    state: dict[str, Any] = {"tables": names}
    for t in tables:
        if t in names:
            state[f"items {t}"] = sorted(canonical_json(i) for i in _pages(ddb, "scan", "Items", TableName=t))
            pitr = ddb.describe_continuous_backups(TableName=t)["ContinuousBackupsDescription"]
            state[f"pitr {t}"] = (pitr.get("PointInTimeRecoveryDescription") or {}).get(
                "PointInTimeRecoveryStatus"
            )
    state["parameters"] = sorted(
        (p["Name"], p.get("Version")) for p in _pages(aws.ssm, "describe_parameters", "Parameters")
    )
    state["roles"] = sorted(r["RoleName"] for r in _pages(aws.iam, "list_roles", "Roles"))
    state["policies"] = sorted(
        (p["PolicyName"], p["DefaultVersionId"], p["AttachmentCount"])
        for p in _pages(aws.iam, "list_policies", "Policies", Scope="Local")
    )
    return state


def folder_files(path: Path | None) -> dict[str, bytes]:
    """The run folder's files, except the timeline and the call log (they record the refusal itself)."""
    if path is None or not path.exists():
        return {}
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name not in ("incident.json", "aws-calls.jsonl")
    }


def refused(
    call: Callable[[], Any],
    error: type[RecoveryError],
    phrase: str,
    aws: Aws,
    tables: list[str],
    run_dir: Path | None = None,
) -> RecoveryError:
    """Run a refused call: the right error, a message with what to do, and nothing changed anywhere."""
    before, files = aws_state(aws, tables), folder_files(run_dir)
    with pytest.raises(RecoveryError) as caught:
        call()
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    assert re.search(phrase, str(caught.value), re.DOTALL), str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert aws_state(aws, tables) == before, "a refused call changed something in AWS"
    assert folder_files(run_dir) == files, "a refused call wrote to the run folder"
    return caught.value


def _second_boundary(sandbox) -> dt.datetime:
    sandbox.advance(1.0)
    t = sandbox.now().replace(microsecond=0)
    sandbox.advance(1.0)
    return t


def limited(aws: Aws, name: str, action: str, *, explicit_deny: bool = False) -> tuple[Aws, dict]:
    """Act as a role allowed everything but ``action`` (NotAction), or everything with a Deny of it."""
    account = aws.account_id
    role = f"lim-{name}"[:64]
    aws.iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    statements = (
        [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": action, "Resource": "*"},
        ]
        if explicit_deny
        else [{"Effect": "Allow", "NotAction": action, "Resource": "*"}]
    )
    aws.iam.put_role_policy(
        RoleName=role,
        PolicyName="all-but-one",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    creds = aws.sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="bad-input")
    return aws.with_credentials(creds["Credentials"]), creds["Credentials"]


def failed_output(notebook: Path) -> str:
    """The error a user sees in the executed notebook (the failing cell's ename: evalue)."""
    nb = nbformat.read(str(notebook), as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors, f"{notebook} shows no error"
    return f"{errors[0]['ename']}: {errors[0]['evalue']}"


# -- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture
def live(aws, unique_name, tmp_path, sandbox):
    """A live table with PITR on, a good version before ``t`` and a corrupted one after."""
    table = create_table(aws.dynamodb, unique_name)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "t1"}, "sk": {"S": "a"}, "v": {"S": "good"}})
    t = _second_boundary(sandbox)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "t1"}, "sk": {"S": "a"}, "v": {"S": "BAD"}})
    return {"table": table, "t": t, "ctx": step_context(aws, tmp_path, table)}


@pytest.fixture
def twins(aws, unique_name, tmp_path):
    """A live table and its restored copy in AWS (item a changed), an incident pointing at them, a keys file."""
    live_name, restored = twin_tables(
        aws, unique_name, restored=[{"pk": "a", "sk": "1", "v": 1}], live=[{"pk": "a", "sk": "1", "v": 2}]
    )
    ctx = diff_context(aws, tmp_path, live_name, restored)
    keys = write_lines(tmp_path / "keys.jsonl", [{"pk": "a", "sk": "1"}])
    return {
        "live": live_name,
        "restored": restored,
        "ctx": ctx,
        "keys": keys,
        "tables": [live_name, restored],
    }


def build(ctx, keys, **kw):
    params = {
        "impacted_source": "keys_file",
        "keys_file": keys,
        "incident_start": START,
        "incident_end": END,
        "progress": False,
        **kw,
    }
    return diff.build_plan(ctx, **params)


# == 03_restore ==============================================================================================
def test_restore_time_outside_the_pitr_window(aws, live):
    for when in ("2001-01-01T00:00:00+00:00", (live["t"] + dt.timedelta(days=1)).isoformat()):
        refused(
            lambda when=when: restore_table(live["ctx"], restore_time=when, progress=False),
            InputError,
            r"outside the point-in-time window.*restorable from .* to .*Choose a time in that window",
            aws,
            [live["table"]],
            live["ctx"].incident.path,
        )


def test_restore_time_without_timezone(aws, live):
    naive = live["t"].replace(tzinfo=None).isoformat()
    refused(
        lambda: restore_table(live["ctx"], restore_time=naive, progress=False),
        InputError,
        r"has no timezone offset: add one \(e\.g\. .*\+00:00",
        aws,
        [live["table"]],
        live["ctx"].incident.path,
    )


def test_restore_time_that_is_not_a_time(aws, live):
    refused(
        lambda: restore_table(live["ctx"], restore_time="yesterday 10am", progress=False),
        InputError,
        r"not an ISO 8601 time; write it like 2024-05-01T09:30:00\+00:00",
        aws,
        [live["table"]],
        live["ctx"].incident.path,
    )


def test_restore_time_after_the_incident_start(aws, live):
    refused(
        lambda: restore_table(
            live["ctx"],
            restore_time=live["t"].isoformat(),
            incident_start=(live["t"] - dt.timedelta(seconds=30)).isoformat(),
            progress=False,
        ),
        InputError,
        "after incident_start.*Choose a time before the incident",
        aws,
        [live["table"]],
        live["ctx"].incident.path,
    )


def test_restore_with_pitr_disabled(aws, unique_name, tmp_path):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    ctx = step_context(aws, tmp_path, table)
    refused(
        lambda: restore_table(ctx, restore_time="2024-01-01T00:00:00+00:00", progress=False),
        NotReadyError,
        r"not enabled on .*enable it \(01_prepare with apply=True\).*source='backup'",
        aws,
        [table],
        ctx.incident.path,
    )


def test_restore_source_backup_without_backup_arn(aws, live):
    refused(
        lambda: restore_table(
            live["ctx"], source="backup", restore_time=live["t"].isoformat(), progress=False
        ),
        InputError,
        r"source='backup' needs backup_arn \(see `aws dynamodb list-backups",
        aws,
        [live["table"]],
        live["ctx"].incident.path,
    )


def test_restore_existing_table_with_another_key_schema(aws, live, unique_name):
    other = create_table(
        aws.dynamodb, f"{unique_name}-other", hash_key=("id", "N"), range_key=None, pitr=False
    )
    refused(
        lambda: restore_table(live["ctx"], source="existing", restored_table_name=other, progress=False),
        InputError,
        r"has key id \(N, partition\).*not a restore of this table\. Set restored_table_name",
        aws,
        [live["table"], other],
        live["ctx"].incident.path,
    )


# == unknown table, region, incident id ======================================================================
@pytest.mark.parametrize("step", ["restore", "diff", "contain"])
def test_unknown_table(aws, tmp_path, step, unique_name):
    ctx = step_context(aws, tmp_path, f"no-such-{unique_name}")
    role = _app_role(aws, unique_name)
    calls = {
        "restore": (
            lambda: restore_table(ctx, restore_time="2024-01-01T00:00:00+00:00", progress=False),
            r"does not exist in us-east-1: check table_name and region",
        ),
        "diff": (
            lambda: build(ctx, write_lines(tmp_path / "k.jsonl", [{"pk": "a"}])),
            r"the live table .* does not exist: check table_name and region",
        ),
        "contain": (
            lambda: contain(
                ctx,
                app_role_name=role,
                tenants=["all"],
                read_only_parameter=f"ro-{unique_name}",
                deny_policy_name=f"d-{unique_name}",
            ),
            r"Requested resource not found.*Check the table name and the region",
        ),
    }
    call, phrase = calls[step]
    refused(call, InputError, phrase, aws, [], ctx.incident.path)


def _app_role(aws: Aws, name: str) -> str:
    role = f"app-{name}"[:64]
    aws.iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{aws.account_id}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    return role


def test_unknown_table_in_prepare_is_a_failing_row(aws, tmp_path, unique_name):
    ctx = step_context(aws, tmp_path, f"no-such-{unique_name}")
    before = aws_state(aws, [])
    report = check_readiness(
        ctx, app_role_name=None, read_only_parameter=f"ro-{unique_name}", deny_policy_name=f"d-{unique_name}"
    )
    row = report.row("table exists")
    assert not row.ok and "check table_name, region" in row.todo
    assert aws_state(aws, []) == before


@pytest.mark.parametrize(
    "region, phrase",
    [
        ("us-east-l", r"not an AWS region with DynamoDB \(did you mean 'us-east-1' or 'us-east-2'"),
        ("US-EAST-1", r"not an AWS region with DynamoDB \(did you mean 'us-east-1'\?\)"),
        ("eu west 1", r"not an AWS region with DynamoDB \(did you mean 'eu-west-1'\?\): set region to the"),
        ("mars-north-1", r"'mars-north-1' is not an AWS region with DynamoDB: set region to the region"),
        ("", "region is required"),
    ],
    ids=["typo", "upper-case", "spaces", "unknown", "empty"],
)
def test_unknown_or_invalid_region(aws, tmp_path, region, phrase):
    runs = tmp_path / "runs"
    refused(lambda: open_context("inc", "orders", region, None, str(runs)), InputError, phrase, aws, [])
    assert not runs.exists(), "the run folder is created only after the parameters are checked"


@pytest.mark.parametrize(
    "incident_id",
    ["../x", "a/b", "..", "/tmp/x", "", ".hidden"],
    ids=["parent", "slash", "dotdot", "absolute", "empty", "hidden"],
)
def test_incident_id_that_would_escape_the_runs_folder(aws, tmp_path, incident_id):
    runs = tmp_path / "runs"
    refused(
        lambda: open_context(incident_id, "orders", aws.region, aws.endpoint_url, str(runs), aws=aws),
        InputError,
        r"is not allowed: use 1-128 letters, digits.*runs/<incident_id>/",
        aws,
        [],
    )
    with pytest.raises(InputError, match="is not allowed"):
        run_steps({"incident_id": incident_id, "runs_dir": str(runs)}, "prepare", log=None, cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing may be created, inside or outside runs/"


# == 04_diff ===================================================================================================
def test_diff_while_the_restored_table_is_still_creating(aws, live, sandbox, tmp_path):
    sandbox.configure(restore_seconds=3600)
    started = restore_table(live["ctx"], restore_time=live["t"].isoformat(), wait=False, progress=False)
    assert started.status == "CREATING"
    keys = write_lines(tmp_path / "keys.jsonl", [{"pk": "t1", "sk": "a"}])
    refused(
        lambda: build(live["ctx"], keys),
        NotReadyError,
        r"is still CREATING .*wait and run this step again, or re-run 03_restore",
        aws,
        [live["table"]],
        live["ctx"].incident.path,
    )
    sandbox.advance(3601)


def test_diff_restored_and_live_tables_with_different_key_schemas(aws, twins, unique_name):
    other = create_table(aws.dynamodb, f"{unique_name}-o", hash_key=("id", "N"), range_key=None, pitr=False)
    twins["ctx"].incident.set("restored_table_name", other)
    refused(
        lambda: build(twins["ctx"], twins["keys"]),
        InputError,
        r"has the key id \(N, partition\), but the live table .*restore from the live table's own",
        aws,
        [*twins["tables"], other],
        twins["ctx"].incident.path,
    )


@pytest.mark.parametrize(
    "line, phrase",
    [
        (
            {"id": "a", "sk": "1"},
            (
                r"keys\.jsonl line 2\).*has attributes \['id', 'sk'\]; the table's key is pk "
                r"\(S, partition\) \+ sk \(S, sort\)\. Fix the file"
            ),
        ),
        ({"pk": "a"}, r"line 2\).*has attributes \['pk'\].*Fix the file so that every line names exactly"),
        ({"pk": "a", "sk": "1", "v": 2}, r"line 2\).*has attributes \['pk', 'sk', 'v'\]"),
    ],
    ids=["other-name", "missing-sort-key", "extra-attribute"],
)
def test_keys_file_with_wrong_key_names(aws, twins, tmp_path, line, phrase):
    keys = write_lines(tmp_path / "keys.jsonl", [{"pk": "a", "sk": "1"}, line])
    refused(
        lambda: build(twins["ctx"], keys),
        InputError,
        phrase,
        aws,
        twins["tables"],
        twins["ctx"].incident.path,
    )


@pytest.mark.parametrize(
    "key_type, line, phrase",
    [
        (
            "S",
            {"pk": 7},
            (
                r"key attribute 'pk' \(keys\.jsonl line 1\) must be a non-empty string, got 7; the "
                r"table's key is pk \(S, partition\)"
            ),
        ),
        (
            "N",
            {"pk": "seven"},
            (
                r"'pk' \(keys\.jsonl line 1\) must be a number, got 'seven'; the table's key is "
                r"pk \(N, partition\)"
            ),
        ),
        ("B", {"pk": "not base64!"}, r"'pk' \(keys\.jsonl line 1\) is not valid base64.*pk \(B, partition\)"),
        (
            "S",
            "{pk: a}",
            r"keys\.jsonl line 1 is not JSON .*Each line must be one JSON object with the table's key",
        ),
    ],
    ids=["number-for-string", "text-for-number", "bad-base64", "not-json"],
)
def test_keys_file_with_wrong_key_types(aws, unique_name, tmp_path, key_type, line, phrase):
    live_name, restored = twin_tables(
        aws, unique_name, restored=[], live=[], hash_key=("pk", key_type), range_key=None
    )
    ctx = diff_context(aws, tmp_path, live_name, restored)
    keys = write_lines(tmp_path / "keys.jsonl", [line])
    refused(lambda: build(ctx, keys), InputError, phrase, aws, [live_name, restored], ctx.incident.path)


def _change(sk: str, when: str = "2024-05-01T10:30:00+00:00") -> dict:
    return {"operation": "itemChange", "timestamp": when, "ids": {"pk": "a", "sk": sk}, "action": "update"}


def test_log_lines_that_are_not_json_are_counted_and_listed(aws, twins, tmp_path):
    log = write_lines(tmp_path / "app.log", [_change("1"), "not json at all", "{broken", _change("2")])
    before = aws_state(aws, twins["tables"])
    result = diff.build_plan(
        twins["ctx"],
        impacted_source="log_file",
        log_file=log,
        incident_start=START,
        incident_end=END,
        progress=False,
    )
    report = result.meta["sources_report"]["log_file"]
    assert (report["read"], report["malformed"], report["found"]) == (4, 2, 2)
    assert report["problems"][:2] == ["line 2: not JSON", "line 3: not JSON"]
    assert result.sources.loc[0, "malformed"] == 2 and "line 2: not JSON" in result.sources.loc[0, "problems"]
    assert aws_state(aws, twins["tables"]) == before


def test_log_file_where_every_line_is_malformed(aws, twins, tmp_path):
    log = write_lines(
        tmp_path / "app.log", ["GET /health 200", "{broken", _change("1", "2024-05-01T10:30:00")]
    )
    refused(
        lambda: diff.build_plan(
            twins["ctx"],
            impacted_source="log_file",
            log_file=log,
            incident_start=START,
            incident_end=END,
            progress=False,
        ),
        InputError,
        r"is not a change log for this table: all 3 lines are malformed \(line 1: not JSON.*"
        r"Expected JSON lines like",
        aws,
        twins["tables"],
        twins["ctx"].incident.path,
    )
    assert not (twins["ctx"].incident.path / "impacted-work").exists()


def test_incident_end_before_incident_start(aws, twins):
    refused(
        lambda: build(twins["ctx"], twins["keys"], incident_end="2024-05-01T09:00:00+00:00"),
        InputError,
        r"is not after incident_start .*Give a later time, or None for now",
        aws,
        twins["tables"],
        twins["ctx"].incident.path,
    )


@pytest.mark.parametrize(
    "kw, phrase",
    [
        ({"tenants": []}, r"tenants is empty: give a list of tenant ids, or \['all'\]"),
        ({"tenants": ["tenant-1"]}, r"needs tenant_attribute \(e\.g\. 'tenantId'.*or use tenants=\['all'\]"),
        (
            {"impacted_source": "s3_logs"},
            r"unknown impacted_source 's3_logs': available sources are .*keys_file",
        ),
        ({"keys_file": "/no/such/keys.jsonl"}, r"does not exist \(or is not a file\): check the path"),
        ({"impacted_source": "cloudwatch_logs"}, r"needs the `log_group` parameter; it is not set"),
    ],
    ids=[
        "tenants-empty",
        "tenants-without-attribute",
        "unknown-source",
        "keys-file-missing",
        "source-without-input",
    ],
)
def test_diff_parameters_refused_before_any_read(aws, twins, kw, phrase):
    refused(
        lambda: build(twins["ctx"], twins["keys"], **kw),
        InputError,
        phrase,
        aws,
        twins["tables"],
        twins["ctx"].incident.path,
    )


# == approval ================================================================================================
def test_approval_token_for_a_different_plan(aws, twins):
    result = build(twins["ctx"], twins["keys"])
    other = "0" * 64
    refused(
        lambda: diff.approve(twins["ctx"], approval_token=other),
        ApprovalError,
        rf"approval_token {other} is not the digest of the current plan, {result.digest}.*"
        rf'approve with the new digest \(approval_token="{result.digest}"\)',
        aws,
        twins["tables"],
        twins["ctx"].incident.path,
    )
    assert not (twins["ctx"].incident.path / "approvals.json").exists()


def test_approve_before_any_plan_exists(aws, twins):
    refused(
        lambda: diff.approve(twins["ctx"], approve=True),
        InputError,
        r"has no plan yet .*run 04_diff first",
        aws,
        twins["tables"],
        twins["ctx"].incident.path,
    )


def test_approve_true_with_nothing_to_approve(aws, unique_name, tmp_path):
    same = [{"pk": "a", "sk": "1", "v": 1}]
    live_name, restored = twin_tables(aws, unique_name, restored=same, live=same)
    ctx = diff_context(aws, tmp_path, live_name, restored)
    result = build(ctx, write_lines(tmp_path / "keys.jsonl", [{"pk": "a", "sk": "1"}]))
    assert result.proposed == 0
    for kw in ({"approve": True}, {"approval_token": result.digest}):
        refused(
            lambda kw=kw: diff.approve(ctx, **kw),
            ApprovalError,
            r"nothing to approve: plan .* proposes no change \(1 impacted items are unchanged\).*"
            r"Skip 05_patch and go on with 06_lift",
            aws,
            [live_name, restored],
            ctx.incident.path,
        )
    assert not (ctx.incident.path / "approvals.json").exists()


# == 05_patch ================================================================================================
def test_patch_attributes_naming_a_key_attribute(aws, twins):
    build(twins["ctx"], twins["keys"])
    diff.approve(twins["ctx"], approve=True)
    refused(
        lambda: patch.apply_plan(twins["ctx"], dry_run=False, attributes=["v", "sk"], progress=False),
        InputError,
        r"attributes may not include the key attribute 'sk' \(the table's key is pk \(S, partition\)",
        aws,
        twins["tables"],
        twins["ctx"].incident.path,
    )


def test_patch_with_nothing_approved(aws, twins):
    build(twins["ctx"], twins["keys"])
    refused(
        lambda: patch.apply_plan(twins["ctx"], dry_run=False, progress=False),
        ApprovalError,
        r"nothing in plan .* is approved .*approve in 04_diff",
        aws,
        twins["tables"],
        twins["ctx"].incident.path,
    )


# == 02_contain / 06_lift ====================================================================================
@pytest.mark.parametrize("step", ["contain", "lift"])
def test_empty_tenants_list(aws, tmp_path, unique_name, step):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    ctx = step_context(aws, tmp_path, table)
    names = {
        "app_role_name": _app_role(aws, unique_name),
        "read_only_parameter": f"ro-{unique_name}",
        "deny_policy_name": f"d-{unique_name}",
    }
    call = (
        (lambda: contain(ctx, tenants=[], **names))
        if step == "contain"
        else (lambda: lift(ctx, tenants=[], **names))
    )
    refused(
        call,
        InputError,
        r"tenants is empty: give a list of tenant ids, or \['all'\]",
        aws,
        [table],
        ctx.incident.path,
    )


def test_contain_without_app_role_name(aws, tmp_path, unique_name):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    ctx = step_context(aws, tmp_path, table)
    refused(
        lambda: contain(ctx, tenants=["all"], app_role_name=None, read_only_parameter=f"ro-{unique_name}"),
        InputError,
        r"app_role_name is required: the IAM role your application runs as",
        aws,
        [table],
        ctx.incident.path,
    )


# == 01_prepare ==============================================================================================
def test_pitr_disabled_in_prepares_report(aws, tmp_path, unique_name):
    table = create_table(aws.dynamodb, unique_name, pitr=False)
    ctx = step_context(aws, tmp_path, table)
    before = aws_state(aws, [table])
    report = check_readiness(
        ctx,
        app_role_name=None,
        read_only_parameter=f"ro-{unique_name}",
        deny_policy_name=f"d-{unique_name}",
        apply=False,
    )
    row = report.row("point-in-time recovery")
    assert not row.ok and "disabled" in row.detail
    assert "run 01_prepare with apply=True" in row.todo and "update-continuous-backups" in row.todo
    assert "[!!] point-in-time recovery" in report.summary()
    assert aws_state(aws, [table]) == before and before[f"pitr {table}"] == "DISABLED"


# == missing permissions =====================================================================================
@pytest.mark.parametrize("step", ["prepare", "restore", "diff"])
def test_missing_describe_table_permission(aws, live, tmp_path, unique_name, step):
    as_limited, _ = limited(aws, unique_name, "dynamodb:DescribeTable")
    ctx = step_context(as_limited, tmp_path, live["table"], incident_id="inc-limited")
    keys = write_lines(tmp_path / "keys.jsonl", [{"pk": "t1", "sk": "a"}])
    call = {
        "prepare": lambda: check_readiness(ctx, app_role_name=None, read_only_parameter=f"ro-{unique_name}"),
        "restore": lambda: restore_table(ctx, restore_time=live["t"].isoformat(), progress=False),
        "diff": lambda: build(ctx, keys),
    }[step]
    err = refused(
        call,
        PermissionDeniedError,
        rf"AWS denied dynamodb:DescribeTable on {live['table']}: .*assumed-role/lim-.*not authorized.*"
        r"Grant `dynamodb:DescribeTable` to the identity running the runbook",
        aws,
        [live["table"]],
        ctx.incident.path,
    )
    assert err.cause_response_code == "AccessDeniedException"


@pytest.mark.parametrize("explicit_deny", [False, True], ids=["not-allowed", "explicit-deny"])
def test_missing_restore_permission(aws, live, tmp_path, unique_name, explicit_deny):
    as_limited, _ = limited(
        aws, unique_name, "dynamodb:RestoreTableToPointInTime", explicit_deny=explicit_deny
    )
    ctx = step_context(as_limited, tmp_path, live["table"], incident_id="inc-limited")
    todo = "Remove the Deny of" if explicit_deny else "Grant"
    refused(
        lambda: restore_table(ctx, restore_time=live["t"].isoformat(), progress=False),
        PermissionDeniedError,
        rf"AWS denied dynamodb:RestoreTableToPointInTime on {live['table']}: .*{todo} "
        r"`dynamodb:RestoreTableToPointInTime`",
        aws,
        [live["table"]],
        ctx.incident.path,
    )
    assert ctx.incident.get("restored_table_name") is None
    assert ctx.incident.timeline[-1]["result"] == "failed"


# == recovery run / the command line =========================================================================
def _yaml(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_unknown_parameter_is_refused_before_anything_runs(aws, tmp_path, capsys):
    runs = tmp_path / "runs"
    params = _yaml(
        tmp_path / "p.yaml", f"incident_id: typo\nruns_dir: {runs}\ntable_name: t\ndry_rn: false\n"
    )
    with pytest.raises(
        InputError,
        match=r"unknown parameter\(s\): dry_rn \(did you mean dry_run\?\)\. No "
        r"notebook declares them, so nothing was run",
    ):
        run_steps(load_parameters(params), None, log=None, cwd=tmp_path)
    before = aws_state(aws, [])
    assert main(["run", "-f", params, "-p", "restor_time", "2025-01-31T09:59:00+00:00"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: unknown parameter(s): dry_rn (did you mean dry_run?), "
        "restor_time (did you mean restore_time?)"
    )
    assert not runs.exists() and aws_state(aws, []) == before


@pytest.mark.parametrize(
    "text, phrase",
    [
        (
            "- table_name: orders\n- dry_run: false\n",
            "holds a list, not a mapping of parameter names to values: write one `name: value` per line",
        ),
        ("just some text\n", "holds a str, not a mapping"),
        (
            "table_name: [unclosed\n",
            "is not valid YAML: while parsing a flow sequence at line 1, column 13: expected ',' or ']'",
        ),
        (
            "a: 1\nb: c: d\n",
            "is not valid YAML: mapping values are not allowed here at line 2, column 5. Fix that",
        ),
    ],
    ids=["list", "text", "unclosed-bracket", "colon-in-value"],
)
def test_parameters_yaml_that_is_not_a_mapping(tmp_path, capsys, text, phrase):
    params = _yaml(tmp_path / "p.yaml", text)
    with pytest.raises(InputError, match=re.escape(phrase)):
        load_parameters(params)
    assert main(["run", "-f", params]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: parameters file") and phrase in err[0], err
    assert [p.name for p in tmp_path.iterdir()] == ["p.yaml"]


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["-p", "incident_id", "../x"], "incident_id '../x' is not allowed: use 1-128 letters"),
        (["-p", "incident_id", "a/b"], "incident_id 'a/b' is not allowed"),
        (
            ["-p", "restore_time", "2025-01-31T09:59:00"],
            "time 2025-01-31T09:59:00 has no UTC offset: write it with one, e.g. 2025-01-31T09:59:00+00:00",
        ),
        (
            ["--steps", "restore,pach"],
            "unknown step(s) pach: choose from prepare, contain, restore, diff, patch",
        ),
    ],
    ids=["incident-dotdot", "incident-slash", "time-without-offset", "unknown-step"],
)
def test_recovery_run_refuses_bad_input_in_one_line(tmp_path, capsys, args, phrase):
    runs = tmp_path / "runs"
    params = _yaml(tmp_path / "p.yaml", f"runs_dir: {runs}\ntable_name: orders\n")
    assert main(["run", "-f", params, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and phrase in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]


# == through the notebooks: what a user sees in the failed step ==============================================
def _run_step(step: str, params: dict, tmp_path: Path, env: dict | None = None):
    result = run_steps(params, step, env=env, log=None, cwd=tmp_path)
    assert not result.ok and result.exit_code == 1 and result.failed_step == step
    return result.failed


@pytest.mark.timeout(180)
def test_notebooks_show_the_message(sandbox, aws, live, tmp_path, unique_name):
    """Three rows through `recovery run` (papermill): the step fails with the message, nothing is written."""
    twin_live, twin_restored = twin_tables(
        aws,
        f"{unique_name}-tw",
        restored=[{"pk": "a", "sk": "1", "v": 1}],
        live=[{"pk": "a", "sk": "1", "v": 2}],
    )
    tables = [live["table"], twin_live, twin_restored]
    _, creds = limited(aws, unique_name, "dynamodb:RestoreTableToPointInTime")
    before = aws_state(aws, tables)
    common = {"region": sandbox.region, "runs_dir": str(tmp_path / "nbruns")}

    # restore time without a timezone, in 03_restore (of incidents that 01_prepare started)
    for started in ("nb-tz", "nb-perm"):
        Incident(started, tmp_path / "nbruns")
    naive = live["t"].replace(tzinfo=None).isoformat()
    failed = _run_step(
        "restore",
        {
            **common,
            "incident_id": "nb-tz",
            "table_name": live["table"],
            "restore_time": naive,
            "poll_seconds": 0.05,
        },
        tmp_path,
    )
    assert failed.error.startswith(f"InputError: restore_time {naive!r} has no timezone offset: add one")
    assert failed_output(failed.notebook) == failed.error and failed.html and failed.html.is_file()

    # a keys file with the wrong key names, in 04_diff
    Incident("nb-keys", tmp_path / "nbruns").set("restored_table_name", twin_restored)
    keys = write_lines(tmp_path / "bad-keys.jsonl", [{"id": "a", "sk": "1"}])
    failed = _run_step(
        "diff",
        {
            **common,
            "incident_id": "nb-keys",
            "table_name": twin_live,
            "impacted_source": "keys_file",
            "keys_file": keys,
            "incident_start": START,
            "incident_end": END,
        },
        tmp_path,
    )
    assert re.match(
        r"InputError: key \{'id': 'a', 'sk': '1'\} \(bad-keys\.jsonl line 1\) has attributes "
        r"\['id', 'sk'\]; the table's key is pk \(S, partition\) \+ sk \(S, sort\)\. Fix the file",
        failed.error,
    ), failed.error
    assert not (tmp_path / "nbruns" / "nb-keys" / "plan.json").exists()

    # missing permission: 03_restore run by an identity that may not restore
    env = {
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }
    failed = _run_step(
        "restore",
        {
            **common,
            "incident_id": "nb-perm",
            "table_name": live["table"],
            "restore_time": live["t"].isoformat(),
            "poll_seconds": 0.05,
        },
        tmp_path,
        env,
    )
    assert failed.error.startswith(
        f"PermissionDeniedError: AWS denied dynamodb:RestoreTableToPointInTime on {live['table']}: User: "
    ), failed.error
    assert "Grant `dynamodb:RestoreTableToPointInTime` to the identity running the runbook" in failed.error

    assert aws_state(aws, tables) == before
