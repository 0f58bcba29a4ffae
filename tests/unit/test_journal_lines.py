"""Journal and backup lines read back as the json module would have written them, whatever they hold.

The lines are written with orjson (the patch engine writes two per item); what orjson refuses (an integer
beyond 64 bits, a lone surrogate, a key that is not text) goes through the json module instead, so no
record is ever lost or changed by the faster writer.
"""

from __future__ import annotations

import json
from decimal import Decimal

from boto3.dynamodb.types import Binary

from recovery_helpers.journal import JsonlFile, _json_default, iter_jsonl


def _as_json_module(record):
    return json.loads(json.dumps(record, default=_json_default))


RECORDS = [
    {"key": {"pk": {"B": b"\x00\xff"}}, "item": {"b": {"BS": [b"a", Binary(b"b")]}}},
    {"text": "é 名前 \U0001f600 \n\t\x00", "n": {"N": "12345678901234567890123456789012345678"}},
    {"capacity": 2.5, "ok": True, "none": None, "list": (1, 2), "set": {3}},
    {"decimal": Decimal("1.50"), "big": 2**70},  # orjson refuses the integer: the json module writes the line
    {"surrogate": "\ud800"},  # orjson refuses it (not UTF-8): the json module escapes it
    {1: "a key that is not text"},
]


def test_every_record_reads_back_as_the_json_module_writes_it(tmp_path):
    path = tmp_path / "journal.jsonl"
    with JsonlFile(path, durable=True) as f:
        f.append_many(RECORDS[:3])
        for record in RECORDS[3:]:
            f.append(record)
    back = list(iter_jsonl(path))
    assert back == [_as_json_module(r) for r in RECORDS]
    assert len(path.read_bytes().splitlines()) == len(RECORDS)


def test_non_ascii_text_is_utf8_in_the_file_and_read_back_by_text_readers(tmp_path):
    path = tmp_path / "backup.jsonl"
    with JsonlFile(path) as f:
        f.append({"item": {"name": {"S": "Zoë 名前"}}})
    assert "Zoë 名前".encode() in path.read_bytes()
    with open(path, encoding="utf-8") as fh:
        assert json.loads(fh.readline())["item"]["name"]["S"] == "Zoë 名前"
