"""02_contain probes, and 06_lift re-verifies, the PartiQL write paths on a table whose key attributes are named
`tenant id` and `doc.id` (issue 12, defect 6: the sandbox answered HTTP 500, so contain recorded "before: error"
and lift never checked the path again)."""

from __future__ import annotations

from recovery_helpers.contain import contain
from recovery_helpers.lift import lift
from recovery_helpers.resources.probe import WRITE_PATHS
from tests.conftest import create_table
from tests.containment_support import context, make_app_role


def test_contain_and_lift_probe_partiql_on_a_key_named_tenant_id(aws, unique_name, tmp_path):
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=("tenant id", "S"), range_key=("doc.id", "S"))
    ddb.put_item(TableName=table, Item={"tenant id": {"S": "t1"}, "doc.id": {"S": "1"}, "v": {"S": "keep"}})
    role = f"app-{unique_name}"[:64]
    make_app_role(aws, role, table)
    ctx = context(aws, tmp_path, table)
    report = contain(
        ctx,
        app_role_name=role,
        read_only_parameter=f"ro-{unique_name}",
        deny_policy_name=f"deny-{unique_name}"[:120],
        verify_timeout_seconds=5,
        poll_initial_seconds=0.05,
    )
    before = {r.path: r.outcome for r in report.baseline}
    assert before["PartiQL DELETE"] == "allowed" and before["PartiQL UPDATE"] == "allowed"
    assert before == {p: "allowed" for p in WRITE_PATHS if p != "PartiQL INSERT"}
    assert {r.path: r.outcome for r in report.verification.results} == {p: "denied" for p in WRITE_PATHS}
    assert "PartiQL DELETE" in ctx.incident.get("write_paths_before")

    lifted = lift(ctx, tenants=["all"], verify_timeout_seconds=5, poll_initial_seconds=0.05)
    assert lifted.verified, lifted.text()
    after = {r.path: r.outcome for r in lifted.verification.results}
    assert after["PartiQL DELETE"] == "allowed" and after["PartiQL UPDATE"] == "allowed"
    assert ddb.scan(TableName=table)["Items"] == [
        {"tenant id": {"S": "t1"}, "doc.id": {"S": "1"}, "v": {"S": "keep"}}
    ]
