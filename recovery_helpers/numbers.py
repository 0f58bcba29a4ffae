"""DynamoDB numbers, exactly: canonical text, range checks, exact JSON reading and exact deserialization.

DynamoDB keeps up to 38 significant digits for magnitudes from 1E-130 to 9.99...E+125 and returns them
without leading or trailing zeros. Python's default decimal context keeps only 28 digits, and boto3's
``TypeDeserializer`` traps on numbers it cannot hold in its own context (the plain form of 1.5E+40 raises
``decimal.Rounded``, boto3 #2500), and ``json.loads`` reads ``12345678.90123456789`` as a float. Nothing here
rounds: digits are moved, never recomputed, so every number keeps every digit whatever its size.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from .errors import InputError

#: Significant digits DynamoDB keeps.
MAX_DIGITS = 38
#: Smallest and largest magnitudes DynamoDB accepts (besides zero).
MIN_MAGNITUDE = Decimal("1E-130")
MAX_MAGNITUDE = Decimal("9." + "9" * (MAX_DIGITS - 1) + "E+125")


def _parse(text: Any) -> Decimal:
    if isinstance(text, bool):
        raise InputError(f"{text!r} is not a DynamoDB number")
    if isinstance(text, Decimal):
        d = text
    else:
        try:
            d = Decimal(str(text).strip())  # exact: constructing a Decimal from text never rounds
        except (InvalidOperation, ValueError) as exc:
            raise InputError(f"{text!r} is not a DynamoDB number") from exc
    if not d.is_finite():
        raise InputError(f"{text!r} is not a DynamoDB number (NaN and Infinity are not allowed)")
    return d


def _trimmed(d: Decimal) -> Decimal:
    """The same value without trailing zeros in its coefficient (exact, unlike ``normalize()``)."""
    sign, digits, exponent = d.as_tuple()
    assert isinstance(exponent, int)
    coefficient = "".join(map(str, digits)).lstrip("0")
    if not coefficient:
        return Decimal(0)
    stripped = coefficient.rstrip("0")
    exponent += len(coefficient) - len(stripped)
    return Decimal((sign, tuple(int(c) for c in stripped), exponent))


#: Text that is already canonical: an integer or a decimal without leading or trailing zeros, no exponent,
#: short enough to be inside DynamoDB's range (what DynamoDB itself returns, so the usual case).
_CANONICAL = re.compile(r"-?(?:[1-9][0-9]{0,39}(?:\.[0-9]{0,39}[1-9])?|0\.[0-9]{0,39}[1-9])")


def normalize_number(text: Any) -> str:
    """A number as DynamoDB stores and returns it: no leading/trailing zeros, plain (no exponent) notation.

    Exact for any number of digits (never rounds); magnitudes outside DynamoDB's range (which DynamoDB
    would refuse) keep the exponent form, so the text stays short and still canonical.
    """
    if type(text) is str and _CANONICAL.fullmatch(text):
        return text  # already in that form (the common case: read from DynamoDB); nothing to move
    d = _trimmed(_parse(text))
    if d.is_zero():
        return "0"
    if MIN_MAGNITUDE <= d.copy_abs() <= MAX_MAGNITUDE:
        return format(d, "f")
    return str(d)


def significant_digits(text: Any) -> int:
    """How many significant digits the number has once leading and trailing zeros are gone."""
    d = _trimmed(_parse(text))
    return 0 if d.is_zero() else len(d.as_tuple().digits)


def check_number(text: Any) -> str:
    """The DynamoDB form of a number, or InputError when DynamoDB could not store it (digits, magnitude)."""
    normalized = normalize_number(text)
    d = Decimal(normalized)
    if significant_digits(d) > MAX_DIGITS:
        raise InputError(
            f"{text} has {significant_digits(d)} significant digits; DynamoDB keeps at most {MAX_DIGITS}, so "
            "no item can have it. Check the value (was it rounded or padded by the tool that wrote it?)."
        )
    if not d.is_zero() and not MIN_MAGNITUDE <= d.copy_abs() <= MAX_MAGNITUDE:
        raise InputError(
            f"{text} is outside DynamoDB's number range (magnitudes 1E-130 to 9.99E+125, or 0), so no item "
            "can have it."
        )
    return normalized


def loads_exact(text: str | bytes) -> Any:
    """``json.loads`` that keeps every digit: fractions and exponents as Decimal, integers as int."""
    return json.loads(text, parse_float=Decimal)


def load_exact(fp: Any) -> Any:
    """``json.load`` that keeps every digit (see :func:`loads_exact`)."""
    return json.load(fp, parse_float=Decimal)


class ExactDeserializer(TypeDeserializer):
    """boto3's TypeDeserializer without its decimal context: N and NS become exact Decimals of any size."""

    def _deserialize_n(self, value: str) -> Decimal:
        return Decimal(value)

    def _deserialize_ns(self, value: list[str]) -> set[Decimal]:
        return {Decimal(v) for v in value}
