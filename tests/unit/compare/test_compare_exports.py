"""compare-exports: two FULL exports in AWS's layout diffed on DuckDB and on Spark, exactly and identically."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from recovery_helpers import cli
from recovery_helpers.compare import duckdb_engine
from recovery_helpers.compare.canonical import key_text
from recovery_helpers.compare.command import run_compare
from recovery_helpers.compare.differences import read_differences
from recovery_helpers.compare.exports_layout import open_export
from recovery_helpers.compare.synthetic import ExportWriter, write_pair
from recovery_helpers.errors import InputError, VerificationError
from tests.conftest import create_table
from tests.spark_support import spark_session  # noqa: F401 - fixture

BIG = "1" + "2" * 36 + "3"  # 38 significant digits
BIG_PLUS_ONE = "1" + "2" * 36 + "4"


def _export(root: Path, name: str, items: list[dict], per_file: int = 2) -> Path:
    writer = ExportWriter(root / name, f"0170000000000{name}", items_per_file=per_file)
    for item in items:
        writer.add(item)
    return writer.close()


def _item(pk: str, **attrs: dict) -> dict:
    return {"pk": {"S": pk}, "sk": {"N": "1"}, **attrs}


TRAPS_BEFORE = [
    _item("same-number", n={"N": "1.5"}, m={"M": {"a": {"N": "1"}, "b": {"S": "x"}}}),
    _item(
        "same-sets", ss={"SS": ["a", "b", "c"]}, ns={"NS": ["1", "2.5", "-3"]}, bs={"BS": ["AAE=", "AAI="]}
    ),
    _item("big-last-digit", big={"N": BIG}),
    _item("big-same", big={"N": BIG}),
    _item("list-order", l={"L": [{"N": "1"}, {"S": "x"}]}),
    _item("rare-attribute", **{"only-here": {"S": "old"}}),
    _item("deleted", v={"BOOL": True}),
    {"pk": {"S": "number-key"}, "sk": {"N": "10"}, "v": {"NULL": True}},
    _item("binary", b={"B": "AAEC"}),
]
TRAPS_AFTER = [
    {
        "m": {"M": {"b": {"S": "x"}, "a": {"N": "1.000"}}},
        "n": {"N": "15E-1"},
        "sk": {"N": "1"},
        "pk": {"S": "same-number"},
    },
    _item(
        "same-sets",
        ss={"SS": ["c", "a", "b"]},
        ns={"NS": ["-3.0", "25E-1", "1"]},
        bs={"BS": ["AAI=", "AAE="]},
    ),
    _item("big-last-digit", big={"N": BIG_PLUS_ONE}),
    _item("big-same", big={"N": BIG + ".0"}),
    _item("list-order", l={"L": [{"S": "x"}, {"N": "1"}]}),
    _item("rare-attribute", **{"only-here": {"S": "new"}}),
    {"pk": {"S": "number-key"}, "sk": {"N": "1.0E1"}, "v": {"NULL": True}},  # the same key, other notation
    _item("binary", b={"B": "AAED"}),
    _item("created", v={"S": "new"}),
]
TRAPS_EXPECTED = {
    "big-last-digit": "changed",
    "list-order": "changed",
    "rare-attribute": "changed",
    "deleted": "deleted",
    "binary": "changed",
    "created": "created",
}


@pytest.fixture
def traps(tmp_path):
    return _export(tmp_path, "before", TRAPS_BEFORE), _export(tmp_path, "after", TRAPS_AFTER)


def _reported(out: Path) -> dict[str, str]:
    return {line["key"]["pk"]["S"]: line["classification"] for line in read_differences(out)}


def test_duckdb_reports_real_differences_and_never_equal_rewrites(traps, tmp_path):
    summary = run_compare(*traps, tmp_path / "out", ["pk", "sk"], engine="duckdb")
    assert _reported(tmp_path / "out") == TRAPS_EXPECTED
    assert summary.line() == "compared=9 changed=4 deleted=1 created=1"
    # same-number, same-sets, big-same, number-key: the text differs, the items are equal
    assert summary.equal_but_rewritten == 4
    lines = {d["key"]["pk"]["S"]: d for d in read_differences(tmp_path / "out")}
    assert lines["big-last-digit"]["restored"]["big"] == {"N": BIG}
    assert lines["big-last-digit"]["live"]["big"] == {"N": BIG_PLUS_ONE}
    assert lines["deleted"]["live"] is None and lines["created"]["restored"] is None
    assert lines["binary"]["live"]["b"] == {"B": "AAED"}  # binary stays base64, as in the export
    assert list(lines) == sorted(lines, key=lambda pk: json.dumps([{"S": pk}, {"N": "1E0"}]))  # key order


@pytest.mark.parametrize("key_kind,with_range", [("string", True), ("number", False), ("binary", False)])
def test_duckdb_on_a_generated_pair_with_every_type(tmp_path, key_kind, with_range):
    expected = write_pair(
        tmp_path / "pair",
        2000,
        items_per_file=300,
        differing=0.05,
        traps=0.05,
        key_kind=key_kind,
        with_range=with_range,
        seed=3,
    )
    names = ["pk", "sk"] if with_range else ["pk"]
    before = open_export(tmp_path / "pair" / "before")
    assert len(before.data_paths) == 7  # spread over several gzipped data files, as AWS writes them
    summary = duckdb_engine.compare(
        before,
        open_export(tmp_path / "pair" / "after"),
        names,
        tmp_path / "out",
        memory_limit="64MB",
        temp_directory=tmp_path / "spill",
        threads=2,
    )
    found = {key_text(d["key"], names): d["classification"] for d in read_differences(tmp_path / "out")}
    assert found == expected.differences
    assert summary.equal_but_rewritten == expected.traps > 50
    assert summary.compared == expected.before_items


@pytest.mark.spark
@pytest.mark.timeout(900)  # a JVM start on a busy 2-core machine took 3 minutes alone
def test_spark_gives_the_same_output_as_duckdb(spark_session, tmp_path):  # noqa: F811
    write_pair(
        tmp_path / "pair",
        400,
        items_per_file=100,
        differing=0.1,
        traps=0.1,
        key_kind="number",
        with_range=False,
        seed=11,
    )
    before, after = tmp_path / "pair" / "before", tmp_path / "pair" / "after"
    ddb = run_compare(before, after, tmp_path / "duck", ["pk"], engine="duckdb", gzip_output=True)
    spark = run_compare(
        before, after, tmp_path / "spark", ["pk"], engine="spark", gzip_output=True, spark=spark_session
    )
    assert ddb.line() == spark.line() and ddb.changed > 10
    assert (tmp_path / "duck" / "part-00000.jsonl.gz").read_bytes() == (
        tmp_path / "spark" / "part-00000.jsonl.gz"
    ).read_bytes()
    # and on the traps: the same lines, byte for byte
    trap_before = _export(tmp_path, "tb", TRAPS_BEFORE)
    trap_after = _export(tmp_path, "ta", TRAPS_AFTER)
    run_compare(trap_before, trap_after, tmp_path / "duck2", ["pk", "sk"], engine="duckdb")
    run_compare(
        trap_before, trap_after, tmp_path / "spark2", ["pk", "sk"], engine="spark", spark=spark_session
    )
    assert (tmp_path / "spark2" / "part-00000.jsonl").read_text() == (
        tmp_path / "duck2" / "part-00000.jsonl"
    ).read_text()
    assert _reported(tmp_path / "spark2") == TRAPS_EXPECTED


def test_the_command_prints_the_counts_last(traps, tmp_path, capsys):
    before, after = traps
    args = [
        "compare-exports",
        "--before",
        str(before.parent.parent),
        "--after",
        str(after),
        "--out",
        str(tmp_path / "out"),
        "--key",
        "pk,sk",
        "--gzip",
        "--temp-dir",
        str(tmp_path / "new" / "spill"),
    ]
    assert cli.main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "compared=9 changed=4 deleted=1 created=1"
    with gzip.open(tmp_path / "out" / "part-00000.jsonl.gz", "rt") as f:
        assert len(f.read().splitlines()) == 6
    # a second run into the same folder is refused: nothing is overwritten
    assert cli.main(args) == 2
    assert "already holds a comparison" in capsys.readouterr().err


def test_bad_input_is_refused_with_what_to_do(traps, tmp_path, capsys):
    before, after = traps
    base = ["compare-exports", "--before", str(before), "--after", str(after)]
    assert cli.main([*base, "--out", str(tmp_path / "o1")]) == 2
    assert "give --key pk[,sk]" in capsys.readouterr().err
    assert cli.main([*base, "--out", str(tmp_path / "o2"), "--key", "id"]) == 2
    assert "no key attribute id" in capsys.readouterr().err
    assert not list((tmp_path / "o2").glob("part-*"))
    with pytest.raises(InputError, match="holds 2 exports"):
        open_export(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a DynamoDB export folder"):
        open_export(tmp_path / "empty")
    damaged = tmp_path / "damaged"
    shutil.copytree(before, damaged)
    data = min((damaged / "data").iterdir())
    data.write_bytes(gzip.compress(b'{"Item": {"pk": {"S": "forged"}}}\n'))
    with pytest.raises(VerificationError, match="MD5"):
        open_export(damaged)
    summary = json.loads((damaged / "manifest-summary.json").read_text())
    (damaged / "manifest-summary.json").write_text(
        json.dumps({**summary, "exportType": "INCREMENTAL_EXPORT"})
    )
    with pytest.raises(InputError, match="incremental_export"):
        open_export(damaged)


def test_exports_read_from_the_sandbox_s3(sandbox, aws, unique_name, tmp_path, capsys):
    """Two real FULL exports of a sandbox table (several data files each), compared from s3:// URIs."""
    ddb = aws.dynamodb
    table = create_table(ddb, unique_name, hash_key=("id", "N"), range_key=None)
    bucket = unique_name.lower()[:50]
    aws.s3.create_bucket(Bucket=bucket)
    sandbox.configure(export_items_per_file=40)
    for i in range(100):
        ddb.put_item(TableName=table, Item={"id": {"N": str(i)}, "v": {"N": "1.5"}, "s": {"SS": ["a", "b"]}})
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    sandbox.advance(2)
    first = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=bucket, S3Prefix="before")
    ddb.put_item(TableName=table, Item={"id": {"N": "7"}, "v": {"N": "2"}, "s": {"SS": ["a", "b"]}})
    ddb.delete_item(TableName=table, Key={"id": {"N": "8"}})
    sandbox.advance(2)
    second = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=bucket, S3Prefix="after")
    for desc in (first, second):
        assert (
            ddb.describe_export(ExportArn=desc["ExportDescription"]["ExportArn"])["ExportDescription"][
                "ExportStatus"
            ]
            == "COMPLETED"
        )
    before = open_export(f"s3://{bucket}/before", s3=aws.s3, download_dir=tmp_path / "dl")
    assert len(before.data_paths) == 3 and before.item_count == 100
    args = [
        "compare-exports",
        "--before",
        f"s3://{bucket}/before",
        "--after",
        f"s3://{bucket}/after",
        "--out",
        str(tmp_path / "out"),
        "--table",
        table,
    ]
    assert cli.main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "compared=100 changed=1 deleted=1 created=0"
    assert {d["key"]["id"]["N"]: d["classification"] for d in read_differences(tmp_path / "out")} == {
        "7": "changed",
        "8": "deleted",
    }


@pytest.mark.parametrize("pair", ["traps", "generated"])
def test_duckdb_decisions_in_worker_processes_give_the_same_bytes(traps, tmp_path, pair):
    if pair == "traps":
        before, after, names, expected = *traps, ["pk", "sk"], TRAPS_EXPECTED
    else:
        planted = write_pair(tmp_path / "pair", 3000, items_per_file=700, differing=0.05, traps=0.05, seed=11)
        before, after, names = tmp_path / "pair" / "before", tmp_path / "pair" / "after", ["pk", "sk"]
        expected = planted.differences
    outputs = []
    for processes in (1, 2):
        out = tmp_path / f"out-{processes}"
        summary = duckdb_engine.compare(
            open_export(before),
            open_export(after),
            names,
            out,
            memory_limit="64MB",
            temp_directory=tmp_path / "spill",
            threads=2,
            decide_processes=processes,
        )
        outputs.append(((out / "part-00000.jsonl").read_bytes(), summary.line(), summary.equal_but_rewritten))
    assert outputs[0] == outputs[1]
    if pair == "traps":
        assert _reported(tmp_path / "out-2") == expected
    else:
        found = {key_text(d["key"], names): d["classification"] for d in read_differences(tmp_path / "out-2")}
        assert found == expected


def test_duckdb_refuses_a_wrong_key_even_when_nothing_differs(traps, tmp_path):
    before, _ = traps
    with pytest.raises(InputError, match="no key attribute id"):
        duckdb_engine.compare(open_export(before), open_export(before), ["id"], tmp_path / "out")


def test_duckdb_an_empty_table_export_makes_every_item_created(tmp_path):
    empty = _export(tmp_path, "before", [])
    after = _export(tmp_path, "after", TRAPS_AFTER)
    assert open_export(empty).data_paths == []  # AWS writes no data file for an empty table
    summary = duckdb_engine.compare(open_export(empty), open_export(after), ["pk", "sk"], tmp_path / "out")
    assert summary.line() == f"compared=0 changed=0 deleted=0 created={len(TRAPS_AFTER)}"
    assert set(_reported(tmp_path / "out").values()) == {"created"}
