"""Password hashing (Argon2id via argon2-cffi) and the strength policy applied at registration."""

from __future__ import annotations

from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ("hash_password", "password_problems", "verify_password")

_hasher = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 128


def hash_password(password: str) -> str:
    """Slow on purpose (tens of ms): call it from a worker thread, not the event loop."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("shop_identity").joinpath("common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problems(password: str, *, personal: tuple[str, ...] = ()) -> list[str]:
    """Why `password` is too weak; empty when it is acceptable. Mirrors Django's default validators."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"This password is too short. It must contain at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        problems.append(f"This password is too long. It must contain at most {MAX_LENGTH} characters.")
    if password.isdigit():
        problems.append("This password is entirely numeric.")
    lowered = password.lower()
    if lowered in _common_passwords():
        problems.append("This password is too common.")
    for detail in personal:
        value = detail.lower().split("@", 1)[0]
        if len(value) >= 3 and (value in lowered or lowered in value):
            problems.append("The password is too similar to your personal details.")
            break
    return problems
