"""Password hashing (Argon2id via argon2-cffi) and the strength policy applied at registration.

The policy is Django's four default validators, rule for rule and message for message, so a password
the original API accepted is accepted here and one it refused is refused with the same words: user
attribute similarity (difflib's `quick_ratio` >= 0.7), at least 8 characters, not one of Django's
20,000 common passwords (its own list, shipped beside this module), not entirely numeric.
"""

from __future__ import annotations

import gzip
import re
import secrets
from collections.abc import Mapping
from difflib import SequenceMatcher
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ("hash_password", "password_problems", "verify_password", "verify_password_or_decoy")

_hasher = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 128
MAX_SIMILARITY = 0.7
# Django's default `UserAttributeSimilarityValidator.user_attributes`, in its order, with the
# verbose names of `django.contrib.auth.models.User` that its message quotes.
USER_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("username", "username"),
    ("first_name", "first name"),
    ("last_name", "last name"),
    ("email", "email address"),
)
_NON_WORD = re.compile(r"\W+")


def hash_password(password: str) -> str:
    """Slow on purpose (tens of ms): call it from a worker thread, not the event loop."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_password_or_decoy(password_hash: str | None, password: str) -> bool:
    """`verify_password`, and for an unknown account (`None`) a check against a throwaway hash anyway: both
    failures take as long, so the time of an answer does not tell which accounts exist."""
    valid = verify_password(password_hash or _decoy_hash(), password)
    return valid and password_hash is not None


@cache
def _common_passwords() -> frozenset[str]:
    packed = resources.files("shop_identity").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(packed).decode("utf-8").splitlines())


def _far_too_short(password: str, value: str) -> bool:
    """Django's `exceeds_maximum_length_ratio`: a value a tenth of the password's length or less cannot
    reach the similarity limit, so it is not compared at all."""
    return len(password) >= 10 * len(value) and len(value) < MAX_SIMILARITY / 2 * len(password)


def too_similar_to(password: str, user: Mapping[str, str | None]) -> str | None:
    """The verbose name of the first attribute the password is too similar to, as Django finds it:
    each value is compared whole and split on runs of non-word characters (so an e-mail address also
    counts as its local part and its domain labels), case-insensitively."""
    lowered = password.lower()
    for attribute, verbose_name in USER_ATTRIBUTES:
        value = user.get(attribute)
        if not value:
            continue
        value_lower = value.lower()
        for part in [*_NON_WORD.split(value_lower), value_lower]:
            if _far_too_short(lowered, part):
                continue
            if SequenceMatcher(a=lowered, b=part).quick_ratio() >= MAX_SIMILARITY:
                return verbose_name
    return None


PASSWORDS_DIFFER = "The two password fields didn't match."


def check_new_password(
    errors: dict[str, list[str]],
    password: str,
    confirmation: str,
    *,
    user: Mapping[str, str | None],
    field: str,
    confirm_field: str,
) -> None:
    """Add to `errors` what is wrong with a new password and its confirmation (registration, change, reset)."""
    if password != confirmation:
        errors.setdefault(confirm_field, []).append(PASSWORDS_DIFFER)
    if weaknesses := password_problems(password, user=user):
        errors[field] = weaknesses


def password_problems(password: str, *, user: Mapping[str, str | None] | None = None) -> list[str]:
    """Why `password` is too weak, in Django's order and words; empty when it is acceptable.

    `user` holds the account's `username`, `first_name`, `last_name` and `email` (missing or empty
    ones are skipped). Beyond Django: more than 128 characters is refused (the request schema says so
    too), which bounds the work a sign-in can ask of Argon2.
    """
    problems: list[str] = []
    similar = too_similar_to(password, user) if user else None
    if similar is not None:
        problems.append(f"The password is too similar to the {similar}.")
    if len(password) < MIN_LENGTH:
        problems.append(f"This password is too short. It must contain at least {MIN_LENGTH} characters.")
    if password.lower().strip() in _common_passwords():
        problems.append("This password is too common.")
    if password.isdigit():
        problems.append("This password is entirely numeric.")
    if len(password) > MAX_LENGTH:
        problems.append(f"This password is too long. It must contain at most {MAX_LENGTH} characters.")
    return problems
