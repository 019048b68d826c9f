"""Money is `Decimal` with two places, one currency per deployment; never a float.

msgspec cannot constrain `Decimal` fields, so amounts arrive as `Decimal` and are checked here.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

__all__ = ("AMOUNT_PATTERN", "CENTS", "MAX_DIGITS", "format_money", "money_problem", "to_money")

AMOUNT_PATTERN = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"
"""The canonical form of an amount, as the OpenAPI document states it (`"999.99"`). Parsing is more
lenient, like DRF's DecimalField: a JSON number, a leading `+` or an exponent are read too, then held to
the same range and two decimal places by `money_problem`."""

CENTS = Decimal("0.01")
MAX_DIGITS = 10
"""Column precision: NUMERIC(10, 2), so at most 99,999,999.99."""


def to_money(value: Decimal | int | str) -> Decimal:
    """Round half-up to cents: the rounding shops and tax authorities expect."""
    return Decimal(value).quantize(CENTS, rounding=ROUND_HALF_UP)


def format_money(value: Decimal) -> str:
    return str(to_money(value))


def money_problem(value: Decimal, *, allow_zero: bool = False) -> str | None:
    """Why `value` is not an acceptable amount, or None when it is."""
    if not value.is_finite():
        return "Enter a finite number."
    if value < 0 or (value == 0 and not allow_zero):
        return "Ensure this value is greater than 0." if not allow_zero else "Ensure this value is not negative."
    # The size first: quantizing 1E+270 to cents is past the decimal context's precision (InvalidOperation).
    if value and value.adjusted() >= MAX_DIGITS - 2:
        return f"Ensure that there are no more than {MAX_DIGITS} digits in total."
    if value != value.quantize(CENTS):
        return "Ensure that there are no more than 2 decimal places."
    return None
