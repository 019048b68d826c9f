"""Password hashing and policy (unit level: the HTTP behaviour is in test_register)."""

from __future__ import annotations

from argon2 import extract_parameters, profiles

from shop_identity.passwords import hash_password, password_problems, verify_password
from tests.conftest import PRODUCTION_PASSWORD_HASHER


def test_hash_verifies_only_the_right_password() -> None:
    stored = hash_password("Kq7-long-enough")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "Kq7-long-enough")
    assert not verify_password(stored, "kq7-long-enough")
    assert not verify_password("not-a-hash", "Kq7-long-enough")


def test_production_hashes_cost_what_rfc_9106_recommends() -> None:
    """Pins the cost the suite lowers for speed (tests/conftest.py): Argon2id, 3 passes over 64 MiB, 4 lanes."""
    stored = PRODUCTION_PASSWORD_HASHER.hash("Kq7-long-enough")
    assert extract_parameters(stored) == profiles.RFC_9106_LOW_MEMORY
    assert verify_password(stored, "Kq7-long-enough")  # a production hash verifies whatever the current cost


TESTCLIENT = {"username": "testclient", "first_name": "Test", "last_name": "Client", "email": "testclient@example.com"}


def test_policy_takes_djangos_own_examples() -> None:
    """The accept/refuse cases of Django 5.1's tests/auth_tests/test_validators.py, in Django's words."""
    for accepted in ("sufficiently-long", "django4242", "a-safe-password"):
        assert password_problems(accepted, user=TESTCLIENT) == [], accepted
    assert password_problems("1234567") == [
        "This password is too short. It must contain at least 8 characters.",
        "This password is too common.",
        "This password is entirely numeric.",
    ]
    assert password_problems("godzilla") == password_problems("password") == ["This password is too common."]
    assert password_problems(" PassWord ") == ["This password is too common."]  # lowered and stripped, as Django
    assert password_problems("42424242") == ["This password is entirely numeric."]
    # Similarity needs the user: without one "testclient" is fine.
    assert password_problems("testclient") == []
    assert password_problems("testclient", user=TESTCLIENT) == ["The password is too similar to the username."]
    assert password_problems("example.com", user=TESTCLIENT) == ["The password is too similar to the email address."]
    assert password_problems("testclient", user={"first_name": "Test"}) == []
    assert password_problems("x" * 129) == ["This password is too long. It must contain at most 128 characters."]


def test_similarity_is_djangos_sequence_ratio_not_any_shared_substring() -> None:
    # quick_ratio("newpass123", "new") = 6/13 < 0.7: the example, which Django accepts.
    assert password_problems("newpass123", user={"username": "New", "email": "new@example.com"}) == []
    # 2*7/(13+7) = 0.7 reaches the limit.
    assert password_problems("wanjiku-2024!", user={"username": "wanjiku"}) == [
        "The password is too similar to the username."
    ]
    # Values are also compared split on non-word characters, so one part of an e-mail address counts
    # (against the whole address "wanjiru2024" scores only 0.39).
    assert password_problems("wanjiru2024", user={"email": "amani.wanjiru@example.com"}) == [
        "The password is too similar to the email address."
    ]
    assert password_problems("mary-jane!", user={"last_name": "", "first_name": "Mary Jane"}) == [
        "The password is too similar to the first name."
    ]
    # Attributes are tried in Django's order; the first hit is the one reported.
    assert password_problems("doe-smith", user={"username": "doesmith", "last_name": "Doe-Smith"}) == [
        "The password is too similar to the username."
    ]
