"""Numbers keep every digit: 38-digit values, huge and tiny magnitudes, number keys read from users' files.

Issue 12, defects 1-3 and the review tables: each test here failed before the fix (rounded to 28 digits, keys
read as floats, 04_diff crashing with decimal.Rounded on 1.5E+40, fractional keys shown as floats).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from recovery_helpers import diff
from recovery_helpers.appkit.change_logger import change_record
from recovery_helpers.changelog import parse_record
from recovery_helpers.errors import InputError
from recovery_helpers.items import KeySchema, items_equal, normalize_number
from recovery_helpers.sources.cloudwatch_logs import unwrap
from tests.conftest import create_table
from tests.diff_support import START, context

DIGITS_38 = "12345678901234567890123456789012345678"
FRACTION_KEY = "12345678.90123456789"  # 19 digits: a float keeps 17


def test_normalize_number_keeps_38_digits_and_trims_zeros_as_dynamodb_does():
    assert normalize_number(DIGITS_38) == DIGITS_38
    assert normalize_number("-0.00" + DIGITS_38 + "000") == "-0.00" + DIGITS_38
    assert (
        normalize_number("1.50") == "1.5"
        and normalize_number("0001") == "1"
        and normalize_number("-0") == "0"
    )
    assert normalize_number("1E+2") == "100"
    assert normalize_number("1.5E+40") == "15" + "0" * 39
    assert normalize_number("9.99E+125") == "999" + "0" * 123
    assert normalize_number("1E-130") == "0." + "0" * 129 + "1"


@pytest.mark.parametrize(
    "edge", ["9." + "9" * 37 + "E+125", "-9." + "9" * 28 + "5E+125", "1E-130", "-1E-130"]
)
def test_the_edges_of_dynamodbs_range_are_numbers_a_key_may_have(edge):
    """Found by the soak profile: abs() rounds to 28 digits and pushed 9.99...95E+125 out of the range."""
    key = KeySchema("id", "N").key_from_plain({"id": Decimal(edge)})
    assert Decimal(key["id"]["N"]) == Decimal(edge) and "E" not in key["id"]["N"]


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-inf", "1e", "abc", ""])
def test_normalize_number_refuses_what_is_not_a_number(bad):
    with pytest.raises(InputError, match="not a DynamoDB number"):
        normalize_number(bad)


def test_items_equal_tells_numbers_apart_in_their_38th_digit():
    a = {"n": {"N": "1.234567890123456789012345678901234567"}}
    b = {"n": {"N": "1.234567890123456789012345678901234568"}}
    assert not items_equal(a, b)
    assert items_equal(a, {"n": {"N": "01.2345678901234567890123456789012345670"}})
    assert not items_equal({"s": {"NS": ["1", a["n"]["N"]]}}, {"s": {"NS": ["1", b["n"]["N"]]}})


def _number_table(aws, name, *, hash_key=("id", "N"), range_key=None):
    return create_table(aws.dynamodb, name, hash_key=hash_key, range_key=range_key, pitr=False)


def _put(aws, table, *items):
    for item in items:
        aws.dynamodb.put_item(TableName=table, Item=item)


def test_a_corruption_in_digits_29_to_38_is_a_change_the_patch_will_revert(aws, unique_name, tmp_path):
    live = _number_table(aws, unique_name)
    restored = _number_table(aws, unique_name + "-restored")
    _put(aws, restored, {"id": {"N": "1"}, "amount": {"N": DIGITS_38}})
    _put(aws, live, {"id": {"N": "1"}, "amount": {"N": DIGITS_38[:-1] + "9"}})
    got = aws.dynamodb.get_item(TableName=live, Key={"id": {"N": "1"}}, ConsistentRead=True)["Item"]
    assert got["amount"]["N"] == DIGITS_38[:-1] + "9"  # the sandbox keeps all 38 digits too
    keys = tmp_path / "keys.jsonl"
    keys.write_text('{"id": 1}\n')
    ctx = context(aws, tmp_path, live, restored)
    result = diff.build_plan(
        ctx, impacted_source="keys_file", keys_file=str(keys), incident_start=START, progress=False
    )
    assert result.counts["changed"] == 1
    row = result.diffs.iloc[0]
    assert (row["path"], row["old"], row["new"]) == ("amount", DIGITS_38, DIGITS_38[:-1] + "9")


def test_a_fractional_number_key_in_a_keys_file_keeps_every_digit(aws, unique_name, tmp_path):
    live = _number_table(aws, unique_name, hash_key=("tenant id", "S"), range_key=("doc.no", "N"))
    restored = _number_table(
        aws, unique_name + "-restored", hash_key=("tenant id", "S"), range_key=("doc.no", "N")
    )
    key = {"tenant id": {"S": "t-1"}, "doc.no": {"N": FRACTION_KEY}}
    _put(aws, restored, {**key, "v": {"S": "good"}})
    _put(aws, live, {**key, "v": {"S": "corrupted"}})
    keys = tmp_path / "keys.jsonl"
    keys.write_text(
        f'{{"tenant id": "t-1", "doc.no": {FRACTION_KEY}}}\n'
    )  # a JSON number, as the contract says
    ctx = context(aws, tmp_path, live, restored)
    result = diff.build_plan(
        ctx, impacted_source="keys_file", keys_file=str(keys), incident_start=START, progress=False
    )
    assert result.counts["changed"] == 1, result.counts
    # the review tables show the key as DynamoDB stores it, not as a float
    assert result.items.iloc[0]["key"] == f"tenant id=t-1, doc.no={FRACTION_KEY}"


def test_a_fractional_number_key_in_a_change_log_keeps_every_digit(aws, unique_name, tmp_path):
    live = _number_table(aws, unique_name)
    restored = _number_table(aws, unique_name + "-restored")
    _put(aws, restored, {"id": {"N": FRACTION_KEY}, "v": {"S": "good"}})
    log = tmp_path / "changes.log"
    log.write_text(
        f'{{"operation": "itemChange", "timestamp": "2024-05-01T10:30:00Z", "ids": {{"id": {FRACTION_KEY}}}, '
        '"action": "delete"}\n'
    )
    ctx = context(aws, tmp_path, live, restored)
    result = diff.build_plan(
        ctx,
        impacted_source="log_file",
        log_file=str(log),
        incident_start=START,
        incident_end="2024-05-01T12:00:00+00:00",
        progress=False,
    )
    assert result.counts["deleted"] == 1, result.counts


def test_cloudwatch_messages_and_the_app_side_logger_keep_every_digit():
    schema = KeySchema("id", "N")
    line = change_record({"id": Decimal(FRACTION_KEY)}, "update", 1714557600123)
    assert json.loads(line, parse_float=Decimal)["ids"]["id"] == Decimal(FRACTION_KEY)  # a JSON number
    wrapped = json.dumps({"level": "INFO", "message": line})
    assert parse_record(unwrap(wrapped), schema).key == {"id": {"N": FRACTION_KEY}}
    assert parse_record(unwrap("INFO change " + line), schema).key == {"id": {"N": FRACTION_KEY}}


@pytest.mark.parametrize(
    "value, reason",
    [
        ("1" * 39, "39 significant digits"),
        ("1E+126", "outside DynamoDB's number range"),
        ("1E-131", "outside DynamoDB's number range"),
    ],
)
def test_a_key_no_dynamodb_item_can_have_is_refused_with_the_reason(value, reason):
    with pytest.raises(InputError, match=reason):
        KeySchema("id", "N").key_from_plain(json.loads(f'{{"id": {value}}}', parse_float=Decimal))


def test_key_to_plain_gives_number_keys_as_dynamodb_stores_them_and_reads_back_exactly():
    schema = KeySchema("id", "N", "at", "N")
    for hash_value, range_value in [(FRACTION_KEY, "7"), ("1.5E+40", "-0.000001"), (DIGITS_38, "1E-130")]:
        key = {"id": {"N": normalize_number(hash_value)}, "at": {"N": normalize_number(range_value)}}
        plain = schema.key_to_plain(key)
        assert not any(isinstance(v, float) for v in plain.values())
        assert schema.key_from_plain(json.loads(json.dumps(plain), parse_float=Decimal)) == key
    assert schema.key_to_plain({"id": {"N": FRACTION_KEY}, "at": {"N": "7"}}) == {"id": FRACTION_KEY, "at": 7}


def test_04_diff_shows_a_changed_item_holding_numbers_beyond_1e38(aws, unique_name, tmp_path):
    live = _number_table(aws, unique_name, hash_key=("pk", "S"))
    restored = _number_table(aws, unique_name + "-restored", hash_key=("pk", "S"))
    _put(
        aws,
        restored,
        {
            "pk": {"S": "a"},
            "big": {"N": "1.5E+40"},
            "tiny": {"N": "1E-130"},
            "set": {"NS": ["9.99E+125", "-1.5E+40"]},
            "status": {"S": "ok"},
        },
    )
    _put(
        aws,
        live,
        {
            "pk": {"S": "a"},
            "big": {"N": "1.5E+40"},
            "tiny": {"N": "1E-130"},
            "set": {"NS": ["9.99E+125", "-1.5E+40"]},
            "status": {"S": "broken"},
            "huge": {"N": "-9.99E+125"},
        },
    )
    keys = tmp_path / "keys.jsonl"
    keys.write_text('{"pk": "a"}\n')
    ctx = context(aws, tmp_path, live, restored)
    result = diff.build_plan(
        ctx, impacted_source="keys_file", keys_file=str(keys), incident_start=START, progress=False
    )
    assert result.counts["changed"] == 1
    rows = {r["path"]: (r["old"], r["new"]) for r in result.diffs.to_dict("records")}
    assert rows == {"status": ("ok", "broken"), "huge": ("(absent)", "-999" + "0" * 123)}


@pytest.mark.parametrize(
    "text",
    [
        "-0",
        "0.50",
        "01",
        "1.",
        ".5",
        "-.5",
        "1.0",
        "1E+2",
        "10",
        "-0.0",
        "0.00012",
        "1" + "0" * 45,
        DIGITS_38,
    ],
)
def test_the_fast_path_for_canonical_text_agrees_with_the_exact_one(text):
    # a Decimal always takes the exact path; text already canonical is returned as it is
    assert normalize_number(text) == normalize_number(Decimal(text))


def test_numbers_in_every_notation_normalize_alike():
    from hypothesis import given
    from hypothesis import strategies as st

    @given(
        st.integers(min_value=-(10**45), max_value=10**45),
        st.integers(min_value=-50, max_value=50),
        st.sampled_from(["plain", "exp", "zeros"]),
    )
    def check(coefficient: int, exponent: int, notation: str) -> None:
        d = Decimal(coefficient).scaleb(exponent)
        text = {
            "plain": format(d, "f"),
            "exp": str(d),
            "zeros": format(d, "f") + (".000" if exponent >= 0 else "000"),
        }[notation]
        assert normalize_number(text) == normalize_number(d)

    check()
