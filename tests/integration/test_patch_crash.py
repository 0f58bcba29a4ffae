"""Issue 15, defects A-D and F: a resumed patch or an undo never overwrites a write it did not make.

Each test stops a patch at the moment that matters (the run's journal line lost after a write landed, or a
write lost on the way to the sandbox), lets the application (another client) change the item, runs the patch
again and undoes it, over HTTP against the sandbox. Where the runbook cannot tell whether a write was its own,
the key must be reported as ``ambiguous`` (journal, report, timeline), with both versions, and left alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from recovery_helpers import patch
from recovery_helpers.items import from_json_safe, items_equal
from tests.unit.patch.test_patch import backup, journal, keys_in, make_scenario

MODES = ["single", "transact"]


def _lose_outcome(sc: Any, key_id: str) -> None:
    """A crash after the write landed but before its journal line: the outcome line is gone."""
    path = sc.ctx.incident.path / patch.JOURNAL_FILE
    kept = [json.dumps(line) for line in journal(sc) if line["key_id"] != key_id]
    path.write_text("".join(k + "\n" for k in kept))


def _lose_writes_to(sc: Any, key_id: str) -> list[str]:
    """Every write call carrying ``key_id`` is lost on the way (a connection that never reached the sandbox),
    as when the process dies right after the backup: the write never lands, the run journals no outcome."""
    lost: list[str] = []

    def hook(request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        op = target.rsplit(".", 1)[-1]
        writes = ("PutItem", "DeleteItem", "UpdateItem", "TransactWriteItems")
        if op in writes and key_id in keys_in(sc.schema, json.loads(request.body)):
            lost.append(op)
            raise EndpointConnectionError(endpoint_url=str(request.url))

    sc.aws.session.events.register("before-send.dynamodb", hook)
    return lost


def _final(sc: Any, key_id: str) -> dict[str, Any]:
    lines = [line for line in journal(sc) if line["key_id"] == key_id and line["status"] in patch.FINAL]
    assert lines, f"no final outcome for {key_id}"
    return lines[-1]


def _fresh(sc: Any) -> Any:
    """A new context on the same run folder (the next process that resumes)."""
    from recovery_helpers.context import open_context

    return open_context("inc", sc.table, sc.aws.region, sc.aws.endpoint_url, str(sc.runs_dir), aws=sc.aws)


def _patch_losing(sc: Any, key_id: str, write_mode: str, **kwargs: Any) -> None:
    """Patch with every write of ``key_id`` lost; then a new SDK session (the resumed process has none of it)."""
    import boto3

    from recovery_helpers.aws import Aws

    lost = _lose_writes_to(sc, key_id)
    patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False, **kwargs)
    assert lost, "the write of the key should have been attempted (and lost)"
    creds = sc.aws.session.get_credentials()
    session = boto3.session.Session(
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key, region_name=sc.aws.region
    )
    sc.aws = Aws(region=sc.aws.region, endpoint_url=sc.aws.endpoint_url, session=session)
    sc.ctx = _fresh(sc)


@pytest.mark.parametrize("write_mode", MODES)
def test_a_resume_does_not_undo_an_application_delete(sandbox, aws, tmp_path, unique_name, write_mode):
    """A: the patch put a deleted item back, died before the journal line; the app deleted it again."""
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    k = sc.deleted[0]
    _lose_outcome(sc, k)
    sc.ddb.delete_item(TableName=sc.table, Key=sc.key(k))  # the application deletes it (its right)

    report = patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    assert sc.get(k) is None, "the resume put back an item the application had deleted"
    line = _final(sc, k)
    if line["status"] == "ambiguous":  # single writes: cannot tell "never landed" from "landed, set back"
        assert report.ambiguous == 1 and "ambiguous" in report.summary().lower()
        assert line["found"] is None and from_json_safe(line["before"]) is None
    else:  # a transaction replayed with its ClientRequestToken proves it landed
        assert line["status"] == "patched"


@pytest.mark.parametrize("write_mode", MODES)
def test_b_attribute_level_undo_keeps_an_application_change(sandbox, aws, tmp_path, unique_name, write_mode):
    """B: attributes=["status"]; the write landed, its journal line was lost; the app changed price."""
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, attributes=["status"], progress=False)
    k = sc.updated[0]
    _lose_outcome(sc, k)
    app = {**sc.get(k), "price": {"N": "99"}}
    sc.ddb.put_item(TableName=sc.table, Item=app)

    patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, attributes=["status"], progress=False)
    patch.undo(sc.ctx, write_mode=write_mode, progress=False)
    assert sc.get(k)["price"] == {"N": "99"}, "undo reverted the application's change to price"


@pytest.mark.parametrize("write_mode", MODES)
def test_c_undo_does_not_recreate_an_item_the_application_deleted(
    sandbox, aws, tmp_path, unique_name, write_mode
):
    """C: the patch's delete of a junk item never landed; the app deleted the junk itself."""
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    k = sc.created[0]
    _patch_losing(sc, k, write_mode)
    assert sc.get(k) is not None  # the delete never landed
    sc.ddb.delete_item(TableName=sc.table, Key=sc.key(k))  # the application deletes it

    report = patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    assert report.failed == 0
    assert _final(sc, k)["status"] in ("ambiguous", "unchanged")  # not "patched": the write was not its own
    patch.undo(sc.ctx, write_mode=write_mode, progress=False)
    assert sc.get(k) is None, "undo re-created an item the application had deleted"


@pytest.mark.parametrize("write_mode", MODES)
def test_d_a_key_written_then_changed_by_the_app_is_reported_by_undo(
    sandbox, aws, tmp_path, unique_name, write_mode
):
    """D: the patch's write landed, its journal line was lost, the app changed the item afterwards."""
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    k = sc.updated[0]
    _lose_outcome(sc, k)
    app = {**sc.get(k), "status": {"S": "changed by the app after the patch"}}
    sc.ddb.put_item(TableName=sc.table, Item=app)

    patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, progress=False)
    assert _final(sc, k)["status"] != "conflict", (
        "a key the patch may have written is journaled as a conflict"
    )
    undone = patch.undo(sc.ctx, write_mode=write_mode, progress=False)
    assert items_equal(sc.get(k), app)  # neither rewritten
    frame = undone.to_frame()  # ... nor skipped silently: undo names it
    assert k in {
        sc.schema.key_id(sc.schema.key_from_plain(dict(zip(sc.schema.names, row, strict=True))))
        for row in frame[list(sc.schema.names)].itertuples(index=False)
    }
    assert not undone.ok


@pytest.mark.parametrize("write_mode", MODES)
def test_f_a_resumed_attribute_patch_never_writes_over_an_item_it_has_no_backup_of(
    sandbox, aws, tmp_path, unique_name, write_mode
):
    """F: backed up, the write lost, the app added an attribute; the resumed UpdateItem must not go over it
    unless backup.jsonl holds exactly that item first."""
    sc = make_scenario(aws, tmp_path, unique_name, n=12)
    sc.approve()
    k = sc.updated[0]
    _patch_losing(sc, k, write_mode, attributes=["status"])
    changed = {**sc.get(k), "lastSeen": {"S": "added by the app"}}
    sc.ddb.put_item(TableName=sc.table, Item=changed)

    patch.apply_plan(sc.ctx, dry_run=False, write_mode=write_mode, attributes=["status"], progress=False)
    now = sc.get(k)
    if not items_equal(now, changed):  # the resume wrote: a backup of exactly the replaced item must exist
        held = [
            from_json_safe(b["item"]) for b in backup(sc) if b["key_id"] == k and b.get("item") is not None
        ]
        assert any(items_equal(h, changed) for h in held), "the resume wrote over an item it had no backup of"
    assert now["lastSeen"] == {"S": "added by the app"}
