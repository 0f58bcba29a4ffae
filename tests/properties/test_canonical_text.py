"""The canonical text the patch digests is the one older run folders were digested with.

``canonical_json`` writes its text directly (for speed); digests recorded in plans, journals and backups by
earlier versions were made from ``json.dumps(canonical_item(item), sort_keys=True, separators=(",", ":"))``.
A difference of one byte would make every reviewed item look changed to a patch of an older plan.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from recovery_helpers.items import canonical_item, canonical_json
from tests.properties.strategies import items, names, schemas, values


def _reference(item):
    return json.dumps(canonical_item(item), sort_keys=True, separators=(",", ":"))


@given(data=st.data())
def test_canonical_text_is_the_json_of_the_canonical_form(data):
    item = data.draw(items(data.draw(schemas())))
    assert canonical_json(item) == _reference(item)


@given(st.dictionaries(names, values, min_size=1, max_size=5))
def test_any_attribute_names_and_values_give_the_same_text(item):
    assert canonical_json(item) == _reference(item)


def test_text_json_escapes_the_same_way():
    # non-ASCII, control characters, quotes, backslashes, a lone surrogate, in names, values and sets
    odd = ["é", "名前", "\n\t\x00\x1f", '"\\', "\ud800", "\U0001f600", "/", "\x7f"]
    item = {
        "pk": {"S": "".join(odd)},
        **{f"a{i}{s}": {"S": s} for i, s in enumerate(odd)},
        "set": {"SS": odd},
        "m": {"M": {s: {"L": [{"S": s}, {"N": "1.50"}, {"BOOL": True}, {"NULL": True}]} for s in odd}},
    }
    assert canonical_json(item) == _reference(item)
    assert canonical_json(None) == _reference(None) == "null"


def test_malformed_values_fall_back_to_the_same_text():
    # what no DynamoDB answer holds, but a hand-written keys file or an old run folder might
    item = {"a": {"BOOL": 1}, "b": {"S": 5}, "c": {"SS": "yx"}, "d": {"X": {"z": 1, "y": 2}}}
    assert canonical_json(item) == _reference(item)
