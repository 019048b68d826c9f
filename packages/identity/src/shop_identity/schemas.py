"""Wire shapes of the identity context (msgspec), separate from the ORM models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from shop_identity.passwords import MAX_LENGTH, MIN_LENGTH

__all__ = (
    "USERNAME_DOCUMENTED",
    "USERNAME_PATTERN",
    "AccountNotice",
    "CloseAccount",
    "CustomerProfile",
    "EmailVerification",
    "PasswordChange",
    "PasswordChanged",
    "PasswordResetConfirm",
    "PasswordResetRequest",
    "ProfileUpdate",
    "RegisterCustomer",
)

USERNAME_PATTERN = r"^[\w.@+-]+\Z"
r"""Python's: `\Z` ends the text, where `$` would also take a final line feed."""
USERNAME_DOCUMENTED = r"^[\w.@+-]+$"
r"""The same rule for the document, whose patterns are ECMA-262: it has no `\Z`, and its `$` ends the text."""
Username = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=150,
        pattern=USERNAME_PATTERN,
        description="150 characters or fewer: letters, digits and @/./+/-/_ only.",
        examples=["john_doe"],
        extra_json_schema={"extra": {"pattern": USERNAME_DOCUMENTED}},
    ),
]
Name = Annotated[str, msgspec.Meta(max_length=150)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, examples=["john@example.com"])]
Phone = Annotated[
    str,
    msgspec.Meta(max_length=32, description="Any common notation; stored as E.164 (default region Kenya)."),
]


Password = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_LENGTH,
        description=(
            f"At least {MIN_LENGTH} characters, not entirely numeric, not a common password and not too similar to "
            "the username, e-mail or names."
        ),
        # The service checks the length with the other password rules, so that one answer lists every problem in
        # Django's words (decision 108); the document states it.
        extra_json_schema={"extra": {"min_length": MIN_LENGTH}},
    ),
]


class RegisterCustomer(msgspec.Struct):
    """`POST /api/auth/register/`."""

    username: Username
    email: Email
    password: Password
    password_confirm: Annotated[str, msgspec.Meta(max_length=MAX_LENGTH, description="The same as `password`.")]
    first_name: Name = ""
    last_name: Name = ""
    phone_number: Phone | None = None


class ProfileUpdate(msgspec.Struct):
    """`PUT`/`PATCH /api/auth/profile/`: only these fields change; any other field sent is ignored.

    PUT is partial too, as in the original API, so a client may send just the fields it changes.
    """

    email: Email | msgspec.UnsetType = msgspec.UNSET
    first_name: Name | msgspec.UnsetType = msgspec.UNSET
    last_name: Name | msgspec.UnsetType = msgspec.UNSET
    phone_number: Phone | msgspec.UnsetType | None = msgspec.UNSET


class CustomerProfile(msgspec.Struct):
    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    phone_number: str | None
    is_staff: bool
    is_verified: bool
    """The e-mail address was confirmed through the link sent to it (reset by any change of address)."""
    email_verified_at: datetime | None
    created_at: datetime
    updated_at: datetime


OldPassword = Annotated[str, msgspec.Meta(max_length=MAX_LENGTH)]
Confirmation = Annotated[str, msgspec.Meta(max_length=MAX_LENGTH, description="The same as `new_password`.")]


class PasswordChange(msgspec.Struct):
    """`POST /api/auth/password/`."""

    current_password: OldPassword
    new_password: Password
    new_password_confirm: Confirmation
    revoke_current: bool = False
    """Also sign out the token making this request (every other token of the account is always revoked)."""


class PasswordChanged(msgspec.Struct):
    detail: str
    revoked_tokens: int
    """How many access tokens (with their refresh tokens) of the account were revoked."""


class PasswordResetRequest(msgspec.Struct):
    """`POST /api/auth/password/reset/`: exactly one of `email` (a link is e-mailed) and `phone_number` (a code is
    sent by SMS)."""

    email: Email | None = None
    phone_number: Phone | None = None


class PasswordResetConfirm(msgspec.Struct):
    """`POST /api/auth/password/reset/confirm/`: the link's `token`, or the SMS `code` with the `phone_number` it
    was sent to."""

    new_password: Password
    new_password_confirm: Confirmation
    token: Annotated[str, msgspec.Meta(max_length=200, description="The token of the e-mailed link.")] | None = None
    phone_number: Phone | None = None
    code: Annotated[str, msgspec.Meta(max_length=12, description="The 6-digit code sent by SMS.")] | None = None


class EmailVerification(msgspec.Struct):
    """`POST /api/auth/email/verify/`."""

    token: Annotated[str, msgspec.Meta(max_length=200, description="The token of the e-mailed link.")]


class CloseAccount(msgspec.Struct):
    """`DELETE /api/auth/me/`."""

    password: Annotated[str, msgspec.Meta(max_length=MAX_LENGTH, description="The account's current password.")]


class AccountNotice(msgspec.Struct):
    """A `202`/`200` answer that only says what happens next."""

    detail: str
