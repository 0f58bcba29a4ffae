"""The read-only parameter means the same to the runbook (contain, lift) as to the application (appkit)."""

from __future__ import annotations

import json

import pytest

from recovery_helpers.appkit import ReadOnlyGuard
from recovery_helpers.contain import contain
from tests.conftest import create_table
from tests.containment_support import context, make_app_role


@pytest.fixture
def setup(aws, unique_name, tmp_path):
    table = create_table(aws.dynamodb, unique_name)
    role = f"app-{unique_name}"[:64]
    make_app_role(aws, role, table)
    return {
        "table": table,
        "role": role,
        "param": f"ro-{unique_name}",
        "policy": f"deny-{unique_name}"[:120],
        "ctx": context(aws, tmp_path, table),
    }


@pytest.mark.parametrize(
    ("previous", "kept"),
    [('["tenant-a", "tenant-c"]', ["tenant-a", "tenant-c"]), ("-", []), ("tenant-a, none", ["tenant-a"])],
)
def test_contain_keeps_the_tenants_the_application_already_treats_as_read_only(aws, setup, previous, kept):
    """A value the application reads as a list of tenants (a JSON list, "-" for nobody) is merged as such:
    every tenant read-only before containment stays read-only for the application, none is garbled."""
    s = setup
    aws.ssm.put_parameter(Name=s["param"], Value=previous, Type="String")
    guard = ReadOnlyGuard(s["param"], ssm_client=aws.ssm, ttl_seconds=0)
    assert sorted(guard.read_only_tenants()) == kept

    report = contain(
        s["ctx"],
        tenants=["tenant-b"],
        app_role_name=s["role"],
        read_only_parameter=s["param"],
        deny_policy_name=s["policy"],
        verify_timeout_seconds=5,
        poll_initial_seconds=0.05,
    )

    assert report.parameter_value.split(",") == [*kept, "tenant-b"]
    assert sorted(guard.read_only_tenants()) == sorted([*kept, "tenant-b"])
    for tenant in [*kept, "tenant-b"]:
        assert guard.is_read_only(tenant)
    assert not guard.is_read_only("tenant-z")


def test_probe_calls_as_the_application_are_recorded_apart(aws, setup):
    """The write probes go through the call recorder like every other client, as the application role's
    session, into probe-calls.jsonl; aws-calls.jsonl keeps only the runbook's own identity."""
    s = setup
    aws.ssm.put_parameter(Name=s["param"], Value="none", Type="StringList")
    contain(
        s["ctx"],
        tenants=["all"],
        app_role_name=s["role"],
        read_only_parameter=s["param"],
        deny_policy_name=s["policy"],
        verify_timeout_seconds=5,
        poll_initial_seconds=0.05,
    )
    run = s["ctx"].incident.path
    probes = [json.loads(line) for line in (run / "probe-calls.jsonl").read_text().splitlines()]
    app_session = f":assumed-role/{s['role']}/"
    assert probes and all(app_session in p["who"] and p["as"] == "probe" for p in probes)
    assert {"PutItem", "UpdateItem", "DeleteItem"} <= {p["operation"] for p in probes}
    assert any(p.get("error") == "AccessDeniedException" for p in probes)  # the Deny, seen by the app
    own = [json.loads(line) for line in (run / "aws-calls.jsonl").read_text().splitlines()]
    assert own and not any(app_session in c["who"] for c in own)
