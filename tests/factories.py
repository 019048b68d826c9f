"""polyfactory factories for request payloads, producing data the API accepts unless told otherwise."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from faker import Faker
from polyfactory import PostGenerated, Use
from polyfactory.factories.msgspec_factory import MsgspecFactory

from shop_catalog import ProductWrite
from shop_identity import RegisterCustomer

_faker = Faker()

# Valid Kenyan mobile numbers in the notations people type.
KENYAN_NUMBERS = ["+254712345678", "0722000111", "+254 733 123456", "0110 123456", "254701234567"]


def _unique_username() -> str:
    return f"{_faker.user_name()[:20]}_{secrets.token_hex(3)}"


def _password() -> str:
    """No letters at all: random letters sometimes spelled a short first name ("ian", "amy"), which the
    password policy rightly refuses as too similar to the customer's details."""
    return "#" + "-".join(f"{secrets.randbelow(10**4):04d}" for _ in range(4))


def _confirm(_: str, values: dict[str, Any]) -> str:
    return str(values["password"])


class RegisterCustomerFactory(MsgspecFactory[RegisterCustomer]):
    __check_model__ = False
    username = Use(_unique_username)
    email = Use(lambda: f"{secrets.token_hex(4)}.{_faker.free_email()}")
    password = Use(_password)
    password_confirm = PostGenerated(_confirm)
    first_name = Use(_faker.first_name)
    last_name = Use(_faker.last_name)
    phone_number = Use(lambda: _faker.random_element(KENYAN_NUMBERS))


class ProductWriteFactory(MsgspecFactory[ProductWrite]):
    """A valid product; SKUs are unique per build."""

    __check_model__ = False
    name = Use(lambda: _faker.catch_phrase()[:60])
    description = Use(_faker.sentence)
    price = Use(lambda: Decimal(_faker.random_int(100, 500_000)) / 100)
    sku = Use(lambda: f"SKU-{secrets.token_hex(5).upper()}")
    categories = Use(list)
    stock_quantity = Use(lambda: _faker.random_int(0, 500))
    is_active = True
