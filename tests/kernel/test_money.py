from __future__ import annotations

from decimal import Decimal

import pytest

from shop_kernel import format_money, money_problem, to_money


@pytest.mark.parametrize(
    ("value", "expected"),
    [("999.99", "999.99"), ("1.005", "1.01"), ("2.5", "2.50"), ("0.004", "0.00"), (3, "3.00")],
)
def test_amounts_round_half_up_to_cents(value: str | int, expected: str) -> None:
    assert format_money(to_money(value)) == expected
    assert to_money(value) == Decimal(expected)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("999.99", None),
        ("0.01", None),
        ("99999999.99", None),
        ("19.990", None),
        ("0", "greater than 0"),
        ("-1", "greater than 0"),
        ("1.999", "2 decimal places"),
        ("100000000", "10 digits"),
        ("1E+270", "10 digits"),  # found by fuzzing: quantizing it raised InvalidOperation (a 500)
        ("1E-300", "2 decimal places"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
    ],
)
def test_money_problems(value: str, problem: str | None) -> None:
    found = money_problem(Decimal(value))
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_zero_allowed_when_asked() -> None:
    assert money_problem(Decimal("0"), allow_zero=True) is None
    assert money_problem(Decimal("0E+100"), allow_zero=True) is None  # zero, however it is written
    assert money_problem(Decimal("-0.01"), allow_zero=True) == "Ensure this value is not negative."
