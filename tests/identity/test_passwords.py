"""Password hashing and policy (unit level: the HTTP behaviour is in test_register)."""

from __future__ import annotations

from shop_identity.passwords import hash_password, password_problems, verify_password


def test_hash_verifies_only_the_right_password() -> None:
    stored = hash_password("Kq7-long-enough")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "Kq7-long-enough")
    assert not verify_password(stored, "kq7-long-enough")
    assert not verify_password("not-a-hash", "Kq7-long-enough")


def test_policy() -> None:
    assert password_problems("Kq7-long-enough") == []
    assert password_problems("x" * 129) == ["This password is too long. It must contain at most 128 characters."]
    assert password_problems("amani-secret-9", personal=("amani@example.com",)) == [
        "The password is too similar to your personal details."
    ]
