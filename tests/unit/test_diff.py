"""04_diff against real tables in the sandbox: classification on every key shape and attribute type."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from recovery_helpers import diff
from recovery_helpers.plan import iter_plan, load_plan_meta
from tests.diff_support import END, START, context, plan_lines, put_items, twin_tables, write_lines


def classes(ctx) -> dict[str, str]:
    return {e.key_id: e.classification for e in iter_plan(ctx.incident)}


def build(ctx, keys, tmp_path, **kw):
    keys_file = write_lines(tmp_path / "keys.jsonl", keys)
    return diff.build_plan(
        ctx,
        impacted_source="keys_file",
        keys_file=keys_file,
        incident_start=START,
        incident_end=END,
        progress=False,
        **kw,
    )


@pytest.mark.parametrize(
    "hash_key, range_key, make_key",
    [
        (("pk", "S"), ("sk", "S"), lambda i: {"pk": f"tenant-{i % 2}", "sk": f"doc-{i}"}),
        (("id", "N"), None, lambda i: {"id": Decimal(i) / 4}),
        (("blob", "B"), None, lambda i: {"blob": bytes([0, 255, i])}),
    ],
    ids=["string-hash-range", "number-hash", "binary-hash"],
)
def test_every_classification_on_every_key_shape(aws, unique_name, tmp_path, hash_key, range_key, make_key):
    k = [make_key(i) for i in range(5)]
    restored = [{**k[0], "v": "a"}, {**k[1], "v": "b"}, {**k[2], "v": "c"}]
    live = [
        {**k[0], "v": "A"},
        {**k[2], "v": "c"},
        {**k[4], "v": "e"},
    ]  # k1 deleted, k3 never existed, k4 new
    live_name, restored_name = twin_tables(
        aws, unique_name, restored=restored, live=live, hash_key=hash_key, range_key=range_key
    )
    ctx = context(aws, tmp_path, live_name, restored_name)
    plain = [
        {
            n: base64.b64encode(v).decode()
            if isinstance(v, bytes)
            else (float(v) if isinstance(v, Decimal) else v)
            for n, v in key.items()
        }
        for key in k
    ]
    result = build(ctx, plain, tmp_path, segments=3, max_workers=2)

    assert result.counts == {"changed": 1, "deleted": 1, "created": 1, "unchanged": 2}
    by_value = {
        (e.restored or e.live or {"v": {"S": "-"}})["v"]["S"]: (e.classification, e.action)
        for e in iter_plan(ctx.incident)
    }
    assert by_value == {
        "a": ("changed", "put"),
        "b": ("deleted", "put"),
        "c": ("unchanged", "none"),
        "-": ("unchanged", "none"),
        "e": ("created", "delete"),
    }
    entries = {e.classification: e for e in iter_plan(ctx.incident)}
    assert entries["deleted"].live is None and entries["deleted"].live_digest == "absent"
    assert entries["created"].restored is None
    for name in ("plan.jsonl", "plan.json", "impacted.jsonl"):
        assert (ctx.incident.path / name).exists()
    assert len((ctx.incident.path / "impacted.jsonl").read_text().splitlines()) == 5
    assert not (ctx.incident.path / "impacted-work").exists()
    meta = load_plan_meta(ctx.incident)
    assert meta["restored_table_name"] == restored_name and meta["digest"] == result.digest
    assert ctx.incident.get("plan_digest") == result.digest
    assert any(ev["action"] == "build plan" and ev["digest"] == result.digest for ev in ctx.incident.timeline)


EVERY_TYPE = {
    "s": "text",
    "n": Decimal("1.50"),
    "b": b"\x01\x02",
    "yes": True,
    "nothing": None,
    "m": {"address": {"city": "Graz", "zip": Decimal(8010)}, "tags": ["a", {"deep": Decimal("2.0")}]},
    "l": [Decimal(1), "two", [b"\x03"], {"x": False}],
    "ss": {"b", "a", "c"},
    "ns": {Decimal(10), Decimal("2.5")},
    "bs": {b"\x00", b"\xff"},
}


def test_every_attribute_type_compares_by_value_and_shows_where_it_differs(aws, unique_name, tmp_path):
    same = {
        **EVERY_TYPE,
        "n": Decimal("1.5"),
        "ss": {"c", "a", "b"},
        "ns": {Decimal("2.50"), Decimal("10.0")},
        "m": {"tags": ["a", {"deep": Decimal(2)}], "address": {"zip": Decimal(8010), "city": "Graz"}},
    }
    differs = {
        **EVERY_TYPE,
        "m": {**EVERY_TYPE["m"], "address": {"city": "Wien", "zip": Decimal(8010)}},
        "l": [Decimal(1), "two", [b"\x04"], {"x": False}],
        "ss": {"a", "b"},
        "new": "attr",
    }
    restored = [{"pk": "p", "sk": "same", **EVERY_TYPE}, {"pk": "p", "sk": "differs", **EVERY_TYPE}]
    live = [{"pk": "p", "sk": "same", **same}, {"pk": "p", "sk": "differs", **differs}]
    live_name, restored_name = twin_tables(aws, unique_name, restored=restored, live=live)
    ctx = context(aws, tmp_path, live_name, restored_name)
    result = build(ctx, [{"pk": "p", "sk": "same"}, {"pk": "p", "sk": "differs"}], tmp_path)

    assert result.counts["unchanged"] == 1 and result.counts["changed"] == 1
    rows = {r["path"]: r for r in result.diffs.to_dict("records")}
    assert set(rows) == {"m.address.city", "l[2][0]", "ss", "new"}
    assert (rows["m.address.city"]["old"], rows["m.address.city"]["new"]) == ("Graz", "Wien")
    assert (rows["l[2][0]"]["old"], rows["l[2][0]"]["new"]) == ("base64:Aw==", "base64:BA==")
    assert (rows["ss"]["old"], rows["ss"]["new"]) == ('["a", "b", "c"]', '["a", "b"]')
    assert (rows["new"]["change"], rows["new"]["old"], rows["new"]["new"]) == ("added", "(absent)", "attr")
    assert set(result.diffs["key"]) == {"pk=p, sk=differs"}
    changed = next(e for e in iter_plan(ctx.incident) if e.classification == "changed")
    assert changed.restored["b"] == {"B": b"\x01\x02"} and changed.restored["bs"]["BS"]


def test_digest_is_stable_across_runs_and_changes_when_an_item_does(aws, unique_name, tmp_path):
    restored = [{"pk": "p", "sk": str(i), "v": i} for i in range(30)]
    live = [{"pk": "p", "sk": str(i), "v": i + (i % 3 == 0)} for i in range(30)]
    live_name, restored_name = twin_tables(aws, unique_name, restored=restored, live=live)
    keys = [{"pk": "p", "sk": str(i)} for i in range(30)]
    first = build(context(aws, tmp_path, live_name, restored_name, "run1"), keys, tmp_path, segments=4)
    second = build(
        context(aws, tmp_path, live_name, restored_name, "run2"),
        list(reversed(keys)),
        tmp_path,
        segments=7,
        max_workers=3,
    )
    assert first.digest == second.digest
    assert (tmp_path / "runs/run1/plan.jsonl").read_text() == (tmp_path / "runs/run2/plan.jsonl").read_text()
    put_items(aws, live_name, [{"pk": "p", "sk": "1", "v": 99}])
    third = build(context(aws, tmp_path, live_name, restored_name, "run3"), keys, tmp_path)
    assert third.digest != first.digest and third.counts["changed"] == first.counts["changed"] + 1


def test_tenant_filter_by_attribute_uses_the_fetched_items(aws, unique_name, tmp_path):
    restored = [{"pk": f"doc-{i}", "sk": "v1", "tenantId": f"t{i % 3}", "v": 1} for i in range(6)]
    live = [
        {"pk": f"doc-{i}", "sk": "v1", "tenantId": f"t{i % 3}", "v": 2} for i in range(5)
    ]  # doc-5 deleted
    live_name, restored_name = twin_tables(aws, unique_name, restored=restored, live=live)
    ctx = context(aws, tmp_path, live_name, restored_name)
    result = build(
        ctx,
        [{"pk": f"doc-{i}", "sk": "v1"} for i in range(6)],
        tmp_path,
        tenant_attribute="tenantId",
        tenants=["t2", "t0"],
    )
    assert sorted(e.key["pk"]["S"] for e in iter_plan(ctx.incident)) == ["doc-0", "doc-2", "doc-3", "doc-5"]
    assert {e.tenant for e in iter_plan(ctx.incident)} == {"t0", "t2"}
    assert result.counts["deleted"] == 1 and result.meta["filtered_by_tenant"] == 2
    assert "other tenants" in set(result.class_table["classification"])
    impacted = [json.loads(line) for line in (ctx.incident.path / "impacted.jsonl").read_text().splitlines()]
    assert sum(not i["in_plan"] for i in impacted) == 2
    assert ctx.incident.get("tenants") == ["t2", "t0"]


def test_tenant_filter_by_key_prefix_pattern(aws, unique_name, tmp_path):
    restored = [{"pk": f"{t}#doc", "sk": "1", "v": 1} for t in ("acme", "globex", "initech")]
    live = [{"pk": f"{t}#doc", "sk": "1", "v": 2} for t in ("acme", "globex", "initech")]
    live_name, restored_name = twin_tables(aws, unique_name, restored=restored, live=live)
    ctx = context(aws, tmp_path, live_name, restored_name)
    result = build(
        ctx,
        [{"pk": f"{t}#doc", "sk": "1"} for t in ("acme", "globex", "initech")],
        tmp_path,
        tenant_attribute="pk:^([^#]+)#",
        tenants=["globex"],
    )
    assert [(e.key["pk"]["S"], e.tenant) for e in iter_plan(ctx.incident)] == [("globex#doc", "globex")]
    assert result.counts["changed"] == 1
    report = result.sources.set_index("source").loc["keys_file"]
    assert "filtered_tenant=2" in report["other"]


def test_several_sources_merge_into_one_plan(aws, unique_name, tmp_path):
    restored = [{"pk": "p", "sk": s, "v": 1} for s in "abc"]
    live = [{"pk": "p", "sk": s, "v": 2} for s in "abc"]
    live_name, restored_name = twin_tables(aws, unique_name, restored=restored, live=live)
    ctx = context(aws, tmp_path, live_name, restored_name)
    keys = write_lines(tmp_path / "keys.jsonl", [{"pk": "p", "sk": "a"}, {"pk": "p", "sk": "b"}])
    log = write_lines(
        tmp_path / "log.jsonl",
        [
            {
                "operation": "itemChange",
                "timestamp": "2024-05-01T10:10:00Z",
                "ids": {"pk": "p", "sk": s},
                "action": "update",
            }
            for s in "bc"
        ],
    )
    result = diff.build_plan(
        ctx,
        impacted_source=["keys_file", "log_file"],
        keys_file=keys,
        log_file=log,
        incident_start=START,
        incident_end=END,
        progress=False,
    )
    assert result.counts["changed"] == 3
    plan = {line["key"]["sk"]["S"]: line for line in plan_lines(ctx)}
    assert plan["b"]["sources"] == ["keys_file", "log_file"]
    assert plan["c"]["first_change"] == "2024-05-01T10:10:00+00:00" and plan["a"]["first_change"] is None
    src = result.sources.set_index("source")
    assert (src.loc["keys_file", "only this source"], src.loc["log_file", "only this source"]) == (1, 1)
