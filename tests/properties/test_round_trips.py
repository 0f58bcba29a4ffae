"""Round trips are exact: keys files, the change-log parser, the app-side logger, key ids, plan files and
backup/journal files give back exactly the keys and items that went in, for every type, number and key shape.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from recovery_helpers.appkit.change_logger import change_record
from recovery_helpers.changelog import parse_record
from recovery_helpers.incident import Incident
from recovery_helpers.items import from_json_safe, item_digest, items_equal, normalize_number, to_python
from recovery_helpers.journal import JsonlFile, iter_jsonl
from recovery_helpers.plan import ACTION_OF, PlanEntry, iter_plan, write_plan
from recovery_helpers.sources import SourceRequest, SourceStats, keys_file
from tests.properties.strategies import items, key_lines, keys, schemas

T = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def _as_stored(key: dict) -> dict:
    """A key as DynamoDB stores it (numbers normalized), to compare text exactly, not only by value."""
    return {n: {"N": normalize_number(v["N"])} if "N" in v else v for n, v in key.items()}


@given(data=st.data())
def test_keys_files_read_every_key_exactly(tmp_path_factory, data):
    schema = data.draw(schemas())
    lines = data.draw(st.lists(key_lines(schema), min_size=1, max_size=5))
    path = tmp_path_factory.mktemp("keys") / "keys.jsonl"
    path.write_text("".join(line.text + "\n" for line in lines), encoding="utf-8")
    request = SourceRequest(
        aws=None,
        table_name="t",
        key_schema=schema,
        restored_table_name=None,
        window_start=T,
        window_end=T,
        keys_file=str(path),
        stats=SourceStats(),
    )
    found = [f.key for f in keys_file.find(request)]
    assert found == [_as_stored(line.key) for line in lines]


@given(data=st.data())
def test_change_log_records_give_back_the_exact_key(data):
    schema = data.draw(schemas())
    line = data.draw(key_lines(schema))
    text = (
        f'{{"operation": "itemChange", "timestamp": 1714557600123, "ids": {line.text}, "action": "update"}}'
    )
    record = parse_record(text, schema)
    assert record.key == _as_stored(line.key) and record.action == "update"


@given(data=st.data())
def test_the_app_side_logger_and_the_parser_agree_on_every_key(data):
    schema = data.draw(schemas())
    key = data.draw(keys(schema))
    plain = to_python(key)  # what an application holds: Decimal, str, Binary
    record = parse_record(change_record(plain, "delete", 1714557600123), schema)
    assert record.key == {n: {"B": bytes(v["B"])} if "B" in v else v for n, v in _as_stored(key).items()}


@given(data=st.data())
def test_key_ids_are_canonical_and_give_the_key_back(data):
    schema = data.draw(schemas())
    key = data.draw(keys(schema))
    key_id = schema.key_id(key)
    assert key_id == schema.key_id(_as_stored(key))
    assert items_equal(schema.key_from_id(key_id), key)


@given(data=st.data())
def test_plan_files_give_back_every_item_exactly(tmp_path_factory, data):
    schema = data.draw(schemas())
    pairs = data.draw(
        st.lists(st.tuples(st.one_of(st.none(), items(schema)), items(schema)), min_size=1, max_size=4)
    )
    incident = Incident("p", runs_dir=tmp_path_factory.mktemp("runs"))
    entries = {}
    for restored, live in pairs:
        key = schema.key_of(live)
        if restored is not None:
            restored = {**restored, **key}
        classification = "created" if restored is None else "changed"
        entry = PlanEntry(
            schema.key_id(key),
            key,
            classification,
            ACTION_OF[classification],
            restored,
            live,
            item_digest(restored),
            item_digest(live),
        )
        entries[entry.key_id] = entry
    write_plan(incident, list(entries.values()), {"key_schema": {}})
    assert {e.key_id: e for e in iter_plan(incident)} == entries


@given(data=st.data())
def test_backup_and_journal_lines_give_back_every_item_exactly(tmp_path_factory, data):
    schema = data.draw(schemas())
    written = data.draw(st.lists(st.one_of(st.none(), items(schema)), min_size=1, max_size=4))
    path = tmp_path_factory.mktemp("backup") / "backup.jsonl"
    backup = JsonlFile(path, durable=True)
    for i, item in enumerate(written):
        backup.append({"key_id": str(i), "item": item, "source": "read"})
    backup.close()
    read = [from_json_safe(line["item"]) for line in iter_jsonl(path)]
    assert read == written


def test_a_number_in_a_keys_file_is_never_read_through_a_float(tmp_path):
    """The example the issue names, kept as a plain test."""
    line = '{"id": 12345678.90123456789}'
    assert json.loads(line, parse_float=Decimal)["id"] == Decimal("12345678.90123456789")
    from recovery_helpers.items import KeySchema

    schema = KeySchema("id", "N")
    assert parse_record(
        f'{{"operation": "itemChange", "timestamp": 1, "ids": {line}, "action": "update"}}', schema
    ).key == {"id": {"N": "12345678.90123456789"}}
