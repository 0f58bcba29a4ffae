"""``items_equal`` (and the digest the patch conditions on) agree with a reference written here on its own.

The reference (``reference.py``) follows DynamoDB's rules directly.
"""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from recovery_helpers.items import item_digest, items_equal
from tests.properties.reference import reference_equal
from tests.properties.strategies import items, schemas

_NEXT = Context(prec=38, Emin=-999, Emax=999)


def _renotate(value: Any, draw: Any) -> Any:
    """The same value written differently: other number notations, sets and maps in another order."""
    ((tag, inner),) = value.items()
    if tag == "N":
        d = Decimal(inner)
        return {
            "N": draw(
                st.sampled_from(
                    [
                        str(d),
                        f"{d:e}",
                        f"{d:E}",
                        format(d, "f"),
                        format(d, "f") + ("0" if "." in format(d, "f") else ""),
                    ]
                )
            )
        }
    if tag in ("NS", "SS", "BS"):
        return {tag: draw(st.permutations(inner))}
    if tag == "L":
        return {"L": [_renotate(v, draw) for v in inner]}
    if tag == "M":
        names = draw(st.permutations(list(inner)))
        return {"M": {k: _renotate(inner[k], draw) for k in names}}
    return value


def _perturb(value: Any, draw: Any) -> Any:
    """A subtly different value: a number one unit off in its last digit, a byte changed, a type changed."""
    ((tag, inner),) = value.items()
    if tag == "N":
        return {"N": str(_NEXT.next_plus(Decimal(inner)))}
    if tag == "S":
        return draw(st.sampled_from([{"S": inner + "x"}, {"B": inner.encode()}]))
    if tag == "B":
        return {"B": bytes(inner) + b"\x00"}
    if tag == "NS":
        return (
            {"NS": [inner[0], *[str(_NEXT.next_plus(Decimal(v))) for v in inner[1:]]]}
            if len(inner) > 1
            else {"N": inner[0]}
        )
    if tag == "L":
        return {"L": [*inner, {"NULL": True}]} if not inner else {"L": [_perturb(inner[0], draw), *inner[1:]]}
    if tag == "M":
        if not inner:
            return {"L": []}
        name = draw(st.sampled_from(sorted(inner)))
        return {"M": {**inner, name: _perturb(inner[name], draw)}}
    if tag == "BOOL":
        return {"BOOL": not inner}
    return {"S": ""}


@given(data=st.data())
def test_items_equal_agrees_with_the_reference(data):
    schema = data.draw(schemas())
    a = data.draw(items(schema))
    kind = data.draw(st.sampled_from(["renotated", "perturbed", "independent"]))
    if kind == "independent":
        b = data.draw(items(schema))
    else:
        b = {k: _renotate(v, data.draw) for k, v in a.items()}
        if kind == "perturbed":
            name = data.draw(st.sampled_from(sorted(a)))
            b[name] = _perturb(a[name], data.draw)
    expected = reference_equal(a, b)
    assert items_equal(a, b) == expected
    assert (item_digest(a) == item_digest(b)) == expected
    if kind == "renotated":
        assert expected  # the reference agrees that notation and order never matter
