"""HTTP endpoints of the identity context (`/api/auth/...`).

At the ~350-line limit: the JSON API (`AuthController`) and the browser pages for the same account flows
(`AccountPagesController`: reset and verification links opened from a message) share their services' providers
and error handling. The OAuth server's endpoints are in `shop_identity.oauth`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from shop_identity.accounts import AccountPolicy, AccountService
from shop_identity.models import Customer
from shop_identity.oauth.web import OAuthRuntime
from shop_identity.privacy import PersonalData, PrivacyService
from shop_identity.schemas import (
    AccountNotice,
    CloseAccount,
    CustomerProfile,
    EmailVerification,
    PasswordChange,
    PasswordChanged,
    PasswordResetConfirm,
    PasswordResetRequest,
    ProfileUpdate,
    RegisterCustomer,
)
from shop_identity.services import CustomerService
from shop_kernel import (
    FieldValidationError,
    Principal,
    Unit,
    bearer_security,
    problems,
    require_customer,
    require_scopes,
)

__all__ = ("AccountPagesController", "AuthController", "provide_customer_service", "to_profile")

RESET_REQUESTED = (
    "If an active account has this address, a message with instructions is on its way. It works for 30 minutes."
)
EMAIL_VERIFIED = "Your e-mail address is verified."
RESET_DONE = "Your password has been changed and every session signed out. Sign in with the new password."


async def provide_customer_service(unit: NamedDependency[Unit]) -> CustomerService:
    return CustomerService(unit)


async def provide_account_service(
    unit: NamedDependency[Unit],
    account_policy: NamedDependency[AccountPolicy],
    oauth: NamedDependency[OAuthRuntime],
) -> AccountService:
    return AccountService(unit, account_policy, oauth.throttle)


async def provide_privacy_service(
    unit: NamedDependency[Unit],
    oauth: NamedDependency[OAuthRuntime],
    personal_data: NamedDependency[Any],
) -> PrivacyService:
    holders: tuple[PersonalData, ...] = personal_data
    return PrivacyService(unit, oauth.throttle, holders)


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _link_base(request: Request[Any, Any, Any], policy: AccountPolicy) -> str:
    """Where links in messages point: the configured front end, or this server's own `/account` pages."""
    return policy.link_base_url or f"{str(request.base_url).rstrip('/')}/account"


def to_profile(customer: Customer) -> CustomerProfile:
    return msgspec.convert(customer, CustomerProfile, from_attributes=True)


async def _update_profile(
    request: Request[Any, Any, Any],
    customers: CustomerService,
    accounts: AccountService,
    policy: AccountPolicy,
    principal: Principal,
    data: ProfileUpdate,
) -> CustomerProfile:
    """A profile update; a new e-mail address gets its verification link."""
    customer_id = principal.require_user_id()
    await accounts.update_profile(customer_id, data, link_base_url=_link_base(request, policy))
    return to_profile(await customers.get(customer_id))  # read again: a host may expire objects on commit


class AuthController(Controller):
    path = "/api/auth"
    tags = ["Customers"]
    dependencies = {
        "customers": provide_customer_service,
        "accounts": provide_account_service,
        "privacy": provide_privacy_service,
    }

    @post(
        "/register/",
        operation_id="registerCustomer",
        summary="Register a customer",
        description=(
            "Creates a customer account. Passwords must match, be at least 8 characters, not entirely "
            "numeric, not common and not close to the username or e-mail. Phone numbers are stored in "
            "E.164 form (default region Kenya). Invalid fields answer 400 with an `errors` member keyed "
            "by field. A link to verify the e-mail address is sent to it (`is_verified` on the profile)."
        ),
        status_code=201,
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        customers: NamedDependency[CustomerService],
        accounts: NamedDependency[AccountService],
        account_policy: NamedDependency[AccountPolicy],
        data: JSONBody[RegisterCustomer],
    ) -> CustomerProfile:
        customer_id = await accounts.register(data, link_base_url=_link_base(request, account_policy))
        return to_profile(await customers.get(customer_id))  # read again: a host may expire objects on commit

    @get(
        "/profile/",
        operation_id="getProfile",
        summary="The caller's profile",
        guards=[require_customer, require_scopes("read")],
        security=bearer_security("read"),
    )
    async def profile(
        self, customers: NamedDependency[CustomerService], principal: NamedDependency[Principal]
    ) -> CustomerProfile:
        return to_profile(await customers.get(principal.require_user_id()))

    @put(
        "/profile/",
        operation_id="replaceProfile",
        summary="Update the caller's profile",
        description=(
            "Changes `email`, `first_name`, `last_name` and `phone_number`; fields left out keep their "
            "value (as in the original API). `username`, `is_staff` and passwords cannot be changed here: "
            "such fields are ignored. A new e-mail address is unverified until the link sent to it is followed."
        ),
        guards=[require_customer, require_scopes("write")],
        security=bearer_security("write"),
    )
    async def replace_profile(
        self,
        request: Request[Any, Any, Any],
        customers: NamedDependency[CustomerService],
        accounts: NamedDependency[AccountService],
        account_policy: NamedDependency[AccountPolicy],
        principal: NamedDependency[Principal],
        data: JSONBody[ProfileUpdate],
    ) -> CustomerProfile:
        return await _update_profile(request, customers, accounts, account_policy, principal, data)

    @patch(
        "/profile/",
        operation_id="updateProfile",
        summary="Partially update the caller's profile",
        guards=[require_customer, require_scopes("write")],
        security=bearer_security("write"),
    )
    async def update_profile(
        self,
        request: Request[Any, Any, Any],
        customers: NamedDependency[CustomerService],
        accounts: NamedDependency[AccountService],
        account_policy: NamedDependency[AccountPolicy],
        principal: NamedDependency[Principal],
        data: JSONBody[ProfileUpdate],
    ) -> CustomerProfile:
        return await _update_profile(request, customers, accounts, account_policy, principal, data)

    @post(
        "/password/",
        operation_id="changePassword",
        summary="Change the caller's password",
        description=(
            "Needs the current password and the new one twice; the new one follows the registration policy. Every "
            "other token of the account (and its refresh token) is revoked at once; the calling token stays valid "
            "unless `revoke_current` is true. An e-mail notice goes to the account's address. Wrong current "
            "passwords count as failed sign-ins: too many answer 429 for a while."
        ),
        status_code=200,
        guards=[require_customer, require_scopes("write")],
        security=bearer_security("write"),
        responses=problems(429),
    )
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        principal: NamedDependency[Principal],
        data: JSONBody[PasswordChange],
    ) -> PasswordChanged:
        current = request.scope.get("auth")
        revoked = await accounts.change_password(
            principal.require_user_id(),
            data,
            current_token=current if isinstance(current, str) else None,
            address=_address(request),
        )
        return PasswordChanged(detail="Password changed.", revoked_tokens=revoked)

    @post(
        "/password/reset/",
        operation_id="requestPasswordReset",
        summary="Ask for a password reset",
        description=(
            "Names an `email` (a single-use link is e-mailed) or a `phone_number` (a 6-digit code is sent by SMS). "
            "Always answers 202 with the same body whether or not an account has the address, so nobody can "
            "learn who has an account. The link or code works once, for 30 minutes; a code takes at most 5 "
            "wrong tries. Requests are limited per client address (429) and, silently, per account."
        ),
        status_code=202,
        responses=problems(429),
    )
    async def request_password_reset(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        account_policy: NamedDependency[AccountPolicy],
        data: JSONBody[PasswordResetRequest],
    ) -> AccountNotice:
        await accounts.request_reset(data, address=_address(request), link_base_url=_link_base(request, account_policy))
        return AccountNotice(detail=RESET_REQUESTED)

    @post(
        "/password/reset/confirm/",
        operation_id="confirmPasswordReset",
        summary="Set a new password with a reset link or code",
        description=(
            "Sends the new password twice with the link's `token`, or with the SMS `code` and the `phone_number` "
            "it went to. Sets the password and revokes every token and refresh token of the account. A wrong, "
            "expired or used token or code answers 400; the fifth wrong code retires it."
        ),
        status_code=200,
    )
    async def confirm_password_reset(
        self, accounts: NamedDependency[AccountService], data: JSONBody[PasswordResetConfirm]
    ) -> AccountNotice:
        await accounts.confirm_reset(data)
        return AccountNotice(detail=RESET_DONE)

    @post(
        "/email/verify/",
        operation_id="verifyEmail",
        summary="Verify the e-mail address with the link's token",
        description=(
            "Marks the account's address verified (`is_verified` and `email_verified_at` on the profile). The "
            "link works once, for 3 days, and dies when the address changes; a wrong, used or expired token "
            "answers 400."
        ),
        status_code=200,
    )
    async def verify_email(
        self, accounts: NamedDependency[AccountService], data: JSONBody[EmailVerification]
    ) -> AccountNotice:
        await accounts.verify_email(data.token)
        return AccountNotice(detail=EMAIL_VERIFIED)

    @post(
        "/email/verify/resend/",
        operation_id="resendEmailVerification",
        summary="Send a new verification link to the caller's e-mail address",
        description="Retires earlier links. 409 when the address is already verified; 429 past 5 an hour.",
        status_code=202,
        guards=[require_customer, require_scopes("write")],
        security=bearer_security("write"),
        responses=problems(409, 429),
    )
    async def resend_verification(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        account_policy: NamedDependency[AccountPolicy],
        principal: NamedDependency[Principal],
    ) -> AccountNotice:
        await accounts.send_verification(
            principal.require_user_id(),
            link_base_url=_link_base(request, account_policy),
            address=_address(request),
        )
        return AccountNotice(detail="A new verification link is on its way to your e-mail address.")

    @get(
        "/me/export/",
        operation_id="exportMyData",
        summary="Everything held about the caller, as one JSON document",
        description=(
            "`profile`; `oauth` (`tokens` and `grants`: metadata only, never a token or secret); `account_messages` "
            "(reset and verification messages sent: when, how, whether used); `orders` with their items; "
            "`notifications` sent about the caller (SMS and e-mail, with their text). Nothing of anybody else."
        ),
        guards=[require_customer, require_scopes("read")],
        security=bearer_security("read"),
    )
    async def export_my_data(
        self, privacy: NamedDependency[PrivacyService], principal: NamedDependency[Principal]
    ) -> Response[dict[str, Any]]:
        document = await privacy.export(principal.require_user_id())
        return Response(
            document,
            headers={"Content-Disposition": 'attachment; filename="my-data.json"', "Cache-Control": "no-store"},
        )

    @delete(
        "/me/",
        operation_id="closeMyAccount",
        summary="Close the caller's account",
        description=(
            "Needs the password. Name, e-mail, phone number and username become a tombstone (`deleted:<id>`), every "
            "token is revoked and the account can never sign in again. Orders stay for accounting, shown as the "
            "deleted customer's, without their notes; notifications keep no address or text. Wrong passwords "
            "count as failed sign-ins (429 past the limit)."
        ),
        guards=[require_customer, require_scopes("write")],
        security=bearer_security("write"),
        responses=problems(429),
    )
    async def close_my_account(
        self,
        request: Request[Any, Any, Any],
        privacy: NamedDependency[PrivacyService],
        principal: NamedDependency[Principal],
        data: JSONBody[CloseAccount],
    ) -> None:
        await privacy.erase(principal.require_user_id(), data.password, address=_address(request))


class AccountPagesController(Controller):
    """Where links in account messages point by default (`ACCOUNT_LINK_BASE_URL` unset): minimal HTML pages, so
    a link works before a shop has a front end of its own. Each shows a form; its POST does the work."""

    path = "/account"
    include_in_schema = False
    dependencies = {"accounts": provide_account_service}

    @get("/reset-password", media_type="text/html")
    async def reset_password_page(
        self, oauth: NamedDependency[OAuthRuntime], token: Annotated[str, Parameter(max_length=200)] = ""
    ) -> Response[str]:
        return oauth.render_page(RESET_PAGE, token=token, errors=[], done=False, action="")

    @post("/reset-password", media_type="text/html", status_code=200)
    async def reset_password(
        self,
        request: Request[Any, Any, Any],
        oauth: NamedDependency[OAuthRuntime],
        accounts: NamedDependency[AccountService],
    ) -> Response[str]:
        form = await request.form()

        async def reset(token: str) -> None:
            new_password = str(form.get("new_password") or "")[:200]
            confirmation = str(form.get("new_password_confirm") or "")[:200]
            await accounts.confirm_reset(
                PasswordResetConfirm(token=token, new_password=new_password, new_password_confirm=confirmation)
            )

        return await _submit(oauth, RESET_PAGE, str(form.get("token") or "")[:200], reset)

    @get("/verify-email", media_type="text/html")
    async def verify_email_page(
        self, oauth: NamedDependency[OAuthRuntime], token: Annotated[str, Parameter(max_length=200)] = ""
    ) -> Response[str]:
        """A button, not an automatic verification: mail scanners open links, people press buttons."""
        return oauth.render_page(VERIFY_PAGE, token=token, errors=[], done=False, action="")

    @post("/verify-email", media_type="text/html", status_code=200)
    async def verify_email(
        self,
        request: Request[Any, Any, Any],
        oauth: NamedDependency[OAuthRuntime],
        accounts: NamedDependency[AccountService],
    ) -> Response[str]:
        token = str((await request.form()).get("token") or "")[:200]
        return await _submit(oauth, VERIFY_PAGE, token, accounts.verify_email)


RESET_PAGE = "account/reset_password.html"
VERIFY_PAGE = "account/verify_email.html"


async def _submit(
    oauth: OAuthRuntime, page: str, token: str, action: Callable[[str], Awaitable[None]]
) -> Response[str]:
    """Run a page's action with its token: the page again with the errors (400), or its done state."""
    try:
        await action(token)
    except FieldValidationError as exc:
        fields = exc.errors if isinstance(exc.errors, dict) else {}
        errors = [message for messages in fields.values() for message in messages]
        return oauth.render_page(page, status_code=400, token=token, errors=errors, done=False, action="")
    return oauth.render_page(page, token="", errors=[], done=True, action="")
