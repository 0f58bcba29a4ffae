"""Containment as the application sees it: every write path denied, reads working, the flag kept."""

from __future__ import annotations

import json

import pytest

from recovery_helpers.aws import Aws
from recovery_helpers.contain import contain
from recovery_helpers.errors import InputError, VerificationError
from recovery_helpers.items import KeySchema
from recovery_helpers.resources.probe import PROBE_CONFIG, WRITE_PATHS, probe_key, probe_writes
from tests.conftest import create_table
from tests.containment_support import attempt, context, make_app_role, real_writes


@pytest.fixture
def setup(aws, unique_name, tmp_path):
    table = create_table(aws.dynamodb, unique_name)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "t1#a"}, "sk": {"S": "1"}, "v": {"S": "good"}})
    role = f"app-{unique_name}"[:64]
    make_app_role(aws, role, table)
    return {
        "table": table,
        "role": role,
        "param": f"ro-{unique_name}",
        "policy": f"deny-{unique_name}"[:120],
        "ctx": context(aws, tmp_path, table),
    }


def _contain(s, **kw):
    args = dict(
        app_role_name=s["role"],
        read_only_parameter=s["param"],
        deny_policy_name=s["policy"],
        verify_timeout_seconds=5,
        poll_initial_seconds=0.05,
    )
    args.update(kw)
    return contain(s["ctx"], **args)


def _app(aws, s):
    return aws.assume_role(f"arn:aws:iam::{aws.account_id}:role/{s['role']}").dynamodb


def test_contain_denies_every_write_path_but_not_reads(aws, setup):
    s = setup
    aws.ssm.put_parameter(Name=s["param"], Value="none", Type="StringList")
    app = _app(aws, s)
    schema = KeySchema.of_table(aws.dynamodb, s["table"])
    before = aws.dynamodb.scan(TableName=s["table"])["Items"]

    report = _contain(s)

    assert report.verified, report.summary()
    assert {r.path: r.outcome for r in report.verification.results} == {p: "denied" for p in WRITE_PATHS}
    assert report.reads_ok
    # What the application would really do now fails on every path...
    key, other = {"pk": {"S": "t1#a"}, "sk": {"S": "1"}}, {"pk": {"S": "new"}, "sk": {"S": "1"}}
    outcomes = {
        name: attempt(call) for name, call in real_writes(app, s["table"], schema, key, other).items()
    }
    assert outcomes == {p: "denied" for p in WRITE_PATHS}
    # ...reads still work, and nothing changed.
    assert app.get_item(TableName=s["table"], Key=key)["Item"]["v"] == {"S": "good"}
    assert aws.dynamodb.scan(TableName=s["table"])["Items"] == before
    # The flag says everyone is read-only, and the timeline says who did what.
    p = aws.ssm.get_parameter(Name=s["param"])["Parameter"]
    assert (p["Value"], p["Type"]) == ("all", "StringList")
    state = s["ctx"].incident.data["state"]
    assert state["read_only_previous"] == {"exists": True, "value": "none", "type": "StringList"}
    assert state["contained_tenants"] == ["all"] and state["app_role_name"] == s["role"]
    actions = [e["action"] for e in s["ctx"].incident.timeline]
    assert {"ssm:PutParameter", "iam:CreatePolicy", "iam:AttachRolePolicy", "verify containment"} <= set(
        actions
    )
    assert all(e["who"].endswith("user/sandbox-admin") for e in s["ctx"].incident.timeline)


def test_baseline_shows_the_paths_were_open_before(aws, setup):
    report = _contain(setup)
    assert {r.path: r.outcome for r in report.baseline} == {
        p: "allowed" for p in WRITE_PATHS if p != "PartiQL INSERT"
    }
    assert setup["ctx"].incident.get("write_paths_before") == [
        p for p in WRITE_PATHS if p != "PartiQL INSERT"
    ]


def test_rerun_merges_tenants_and_keeps_the_original_value(aws, setup):
    s = setup
    aws.ssm.put_parameter(
        Name=s["param"], Value="t9", Type="StringList"
    )  # t9 was read-only before the incident
    _contain(s, tenants=["t1"])
    assert aws.ssm.get_parameter(Name=s["param"])["Parameter"]["Value"] == "t9,t1"
    _contain(s, tenants=["t2", "t1"])
    assert aws.ssm.get_parameter(Name=s["param"])["Parameter"]["Value"] == "t9,t1,t2"
    state = s["ctx"].incident.data["state"]
    assert state["read_only_previous"] == {"exists": True, "value": "t9", "type": "StringList"}
    assert state["contained_tenants"] == ["t1", "t2"]
    attached = aws.iam.list_attached_role_policies(RoleName=s["role"])["AttachedPolicies"]
    assert len(attached) == 1
    assert [e["action"] for e in s["ctx"].incident.timeline].count("iam:AttachRolePolicy") == 1


def test_a_missing_parameter_is_remembered_as_missing(aws, setup):
    _contain(setup, tenants="t1,t2")
    assert setup["ctx"].incident.get("read_only_previous") == {"exists": False, "value": None, "type": None}
    p = aws.ssm.get_parameter(Name=setup["param"])["Parameter"]
    assert (p["Value"], p["Type"]) == ("t1,t2", "StringList")


def test_an_incomplete_deny_policy_is_completed(aws, setup):
    s = setup
    seed = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Resource": "*",
                "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            }
        ],
    }
    aws.iam.create_policy(PolicyName=s["policy"], PolicyDocument=json.dumps(seed))
    report = _contain(s)
    assert report.deny_policy_change == "updated" and report.verified
    assert report.verification.results and all(r.outcome == "denied" for r in report.verification.results)
    versions = aws.iam.list_policy_versions(PolicyArn=report.deny_policy_arn)["Versions"]
    assert len(versions) == 2


@pytest.mark.parametrize(
    "hash_key, range_key",
    [
        (("id", "N"), None),
        (("tenant", "S"), ("blob", "B")),
        (("bin", "B"), ("num", "N")),
    ],
)
def test_probes_fit_any_key_schema(aws, unique_name, tmp_path, hash_key, range_key):
    table = create_table(aws.dynamodb, unique_name, hash_key=hash_key, range_key=range_key)
    schema = KeySchema.of_table(aws.dynamodb, table)
    existing = probe_key(schema)
    aws.dynamodb.put_item(TableName=table, Item={**existing, "v": {"S": "keep"}})
    role = f"app-{unique_name}"[:64]
    make_app_role(aws, role, table)
    ctx = context(aws, tmp_path, table)
    report = contain(
        ctx,
        app_role_name=role,
        read_only_parameter=f"ro-{unique_name}",
        deny_policy_name=f"deny-{unique_name}",
        verify_timeout_seconds=5,
        poll_initial_seconds=0.05,
    )
    assert {r.path: r.outcome for r in report.verification.results} == {p: "denied" for p in WRITE_PATHS}
    assert {r.path: r.outcome for r in report.baseline} == {
        p: "allowed" for p in WRITE_PATHS if p != "PartiQL INSERT"
    }
    assert aws.dynamodb.scan(TableName=table)["Items"] == [{**existing, "v": {"S": "keep"}}]


def test_probes_change_nothing_even_when_every_path_is_open(aws, unique_name):
    table = create_table(aws.dynamodb, unique_name, hash_key=("id", "N"), range_key=("at", "S"))
    schema = KeySchema.of_table(aws.dynamodb, table)
    items = [{"id": {"N": str(i)}, "at": {"S": "x"}, "v": {"N": "1"}} for i in range(3)]
    for item in items:
        aws.dynamodb.put_item(TableName=table, Item=item)
    ddb = Aws(
        region=aws.region, endpoint_url=aws.endpoint_url, session=aws.session, config=PROBE_CONFIG
    ).dynamodb
    results = probe_writes(ddb, table, schema, existing_key=schema.key_of(items[0]))
    assert {r.path: r.outcome for r in results} == {p: "allowed" for p in WRITE_PATHS}
    assert sorted(aws.dynamodb.scan(TableName=table)["Items"], key=lambda i: i["id"]["N"]) == items


def test_bad_input_is_refused_before_anything_is_written(aws, setup):
    s = setup
    with pytest.raises(InputError, match="app_role_name is required"):
        _contain(s, app_role_name=None)
    with pytest.raises(InputError, match="does not exist"):
        _contain(s, app_role_name="no-such-role")
    with pytest.raises(InputError, match="StringList"):
        _contain(s, tenants=["a,b"])
    assert (
        aws.ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [s["param"]]}])["Parameters"]
        == []
    )
    assert aws.iam.list_attached_role_policies(RoleName=s["role"])["AttachedPolicies"] == []
    assert s["ctx"].incident.timeline == []


def test_unverifiable_containment_is_a_failure_that_says_what_to_check(aws, unique_name, tmp_path):
    """A role only Lambda may assume cannot be probed; without the policy simulator it is 'unverified'."""
    table = create_table(aws.dynamodb, unique_name)
    role = f"app-{unique_name}"[:64]
    make_app_role(aws, role, table, trust_account=False)
    ctx = context(aws, tmp_path, table)
    with pytest.raises(VerificationError) as err:
        contain(
            ctx,
            app_role_name=role,
            read_only_parameter=f"ro-{unique_name}",
            deny_policy_name=f"deny-{unique_name}",
            verify_timeout_seconds=1,
            poll_initial_seconds=0.05,
        )
    message = str(err.value)
    if "UNVERIFIED" in message:
        assert "sts:AssumeRole" in message and "SimulatePrincipalPolicy" in message
    else:  # the sandbox simulates policies: then the simulation must have found every path denied
        pytest.fail(message)
    # The brakes are on even though the check could not be made.
    assert aws.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [e for e in ctx.incident.timeline if e["action"] == "verify containment"][0]["result"] == "failed"
