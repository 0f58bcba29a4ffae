"""DynamoDB's number rules, implemented for the sandbox on their own (never the runbook's ``items`` module).

DynamoDB keeps up to 38 significant digits, magnitudes from 1E-130 to 9.99...E+125, and stores a number trimmed:
no leading or trailing zeros, no exponent (``"1.50"`` -> ``"1.5"``, ``"1.5E+40"`` -> ``"15"`` and 39 zeros). More
digits or a magnitude out of range is a ValidationException with DynamoDB's message, for keys, sets, nested values,
conditions and the results of update arithmetic alike. The sandbox checks the runbook against these rules; if it
used the runbook's own normalisation, it would agree with the runbook's mistakes.
"""

from __future__ import annotations

import decimal
import re

#: DynamoDB's limits (Developer Guide, "Data types": Number).
MAX_DIGITS = 38
MAX_EXPONENT = 125  # largest magnitude 9.999...E+125
MIN_EXPONENT = -130  # smallest magnitude 1E-130

#: The forms DynamoDB accepts: an optional sign, digits with an optional point, an optional exponent.
_SYNTAX = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
#: Wide enough that no sum of two valid numbers is rounded; results are checked against MAX_DIGITS afterwards.
_EXACT = decimal.Context(
    prec=MAX_EXPONENT - MIN_EXPONENT + 2 * MAX_DIGITS,
    Emax=999_999,
    Emin=-999_999,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow],
)

NOT_A_NUMBER = "The parameter cannot be converted to a numeric value"
OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
UNDERFLOW = "Number underflow. Attempting to store a number with magnitude smaller than supported range"
TOO_PRECISE = f"Attempting to store more than {MAX_DIGITS} significant digits in a Number"


class NumberError(ValueError):
    """A number DynamoDB refuses; ``str()`` is DynamoDB's ValidationException message."""


def parse(text: object) -> decimal.Decimal:
    """The exact value of a DynamoDB number string, or NumberError with DynamoDB's message."""
    if not isinstance(text, str) or not text:
        raise NumberError(NOT_A_NUMBER)
    if not _SYNTAX.match(text):
        raise NumberError(f"{NOT_A_NUMBER}: {text}")
    value = decimal.Decimal(text)
    check(value)
    return value


def check(value: decimal.Decimal) -> None:
    """Refuse a value DynamoDB cannot store (too many digits, magnitude out of range)."""
    if not value.is_finite():
        raise NumberError(NOT_A_NUMBER)
    if value.is_zero():
        return
    magnitude = value.adjusted()  # the exponent of the first significant digit, exactly
    digits = "".join(map(str, value.as_tuple().digits)).strip("0")
    if magnitude > MAX_EXPONENT:
        raise NumberError(OVERFLOW)
    if magnitude < MIN_EXPONENT:
        raise NumberError(UNDERFLOW)
    if len(digits) > MAX_DIGITS:
        raise NumberError(TOO_PRECISE)


def canonical(value: decimal.Decimal | str) -> str:
    """The form DynamoDB stores and returns: plain notation, no leading/trailing zeros, "0" for any zero."""
    number = parse(value) if isinstance(value, str) else value
    if number.is_zero():
        return "0"
    text = format(number, "f")  # exact: every digit, no exponent
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def add(left: str, right: str) -> str:
    """``left + right`` as update expressions (SET a = a + :n, ADD) compute it: exact, then checked."""
    total = _EXACT.add(parse(left), parse(right))
    check(total)
    return canonical(total)


def subtract(left: str, right: str) -> str:
    """``left - right`` (SET a = a - :n): exact, then checked."""
    difference = _EXACT.subtract(parse(left), parse(right))
    check(difference)
    return canonical(difference)
