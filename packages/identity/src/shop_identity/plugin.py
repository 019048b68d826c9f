"""`IdentityPlugin`: mounts the identity context (customers and the OAuth2/OIDC server) into any Litestar app."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from litestar import Router
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from shop_identity import models as _models  # noqa: F401  (tables join the shared metadata)
from shop_identity.accounts import AccountPolicy, AccountService
from shop_identity.controllers import AccountPagesController, AuthController
from shop_identity.oauth.clients import OAuthClientService
from shop_identity.oauth.controllers import ClientAdminController, OAuthController, WellKnownController
from shop_identity.oauth.keys import SigningKeys, generate_private_key_pem
from shop_identity.oauth.openapi import register_oauth_schemas
from shop_identity.oauth.pages import AuthorizeController
from shop_identity.oauth.server import OAuthConfig
from shop_identity.oauth.throttle import FailureCounter, MemoryFailureCounter, SignInThrottle
from shop_identity.oauth.web import OAuthRuntime, SignInCookie
from shop_identity.privacy import PersonalData, PrivacyService
from shop_identity.services import CustomerService, TokenService
from shop_identity.staff import CustomerAdminController, CustomerOrders, StaffCustomerService
from shop_kernel import InvalidText, Principal, install_shared

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

__all__ = ("IdentityPlugin", "IdentitySettings")

log = logging.getLogger("shop_identity")


@dataclass(frozen=True)
class IdentitySettings:
    access_token_ttl: timedelta = timedelta(hours=1)
    refresh_token_ttl: timedelta = timedelta(days=7)
    authorization_code_ttl: timedelta = timedelta(minutes=5)
    id_token_ttl: timedelta = timedelta(hours=1)
    issuer: str | None = None
    """The issuer URL (`https://shop.example`); None takes it from each request's URL (development)."""
    signing_key_pem: str | None = None
    """RSA private key (PEM) signing id_tokens; None generates one per process (tests, a single dev process)."""
    retired_signing_key_pems: tuple[str, ...] = ()
    """Keys still published in the JWKS after a rotation, so id_tokens they signed still verify."""
    session_secret: bytes | None = None
    """Encrypts the sign-in cookie of the authorize pages; None makes one per process."""
    secure_cookies: bool = True
    """Sign-in cookie only over https; off only for plain-http development."""
    sign_in_session_ttl: timedelta = timedelta(hours=1)
    max_failed_sign_ins_per_account: int = 5
    max_failed_sign_ins_per_address: int = 20
    failed_sign_in_window: timedelta = timedelta(minutes=15)
    shop_name: str = "Shop"
    refused_client_ids: frozenset[str] = frozenset()
    """OAuth clients treated as unknown even if registered: the host's development clients in production."""
    account_link_base_url: str | None = None
    """Front-end URL that links in account messages point at (`<base>/reset-password?token=...`); None: this
    server's own minimal pages under `/account`."""
    password_reset_ttl: timedelta = timedelta(minutes=30)
    max_reset_code_tries: int = 5
    max_reset_requests_per_account: int = 5
    max_reset_requests_per_address: int = 20
    reset_request_window: timedelta = timedelta(hours=1)


class IdentityPlugin(InitPluginProtocol):
    """Registers customers, registration, profiles and the OAuth2/OIDC server; the host app provides an SQLAlchemy
    session (under the kernel's `DB_SESSION_KEY`; services write through the kernel's `unit` over it) and a
    `BearerTokenMiddleware` backed by `make_token_resolver`."""

    def __init__(
        self,
        settings: IdentitySettings | None = None,
        *,
        sign_in_failures: FailureCounter | None = None,
        customer_orders: CustomerOrders | None = None,
        personal_data: Sequence[PersonalData] = (),
    ) -> None:
        """`sign_in_failures`: where failed sign-ins are counted; give several replicas a shared one (the
        default counts in this process). `customer_orders`: how the staff customer detail learns a customer's
        orders (the ordering context's `customer_order_summary`); without it the detail shows none.
        `personal_data`: what other contexts hold about a person, exported and erased with the account."""
        self.customer_orders = customer_orders
        self.personal_data = tuple(personal_data)
        self.settings = settings = settings or IdentitySettings()
        if settings.signing_key_pem is None:
            log.warning("no OAuth signing key configured: id_tokens are signed with a key made for this process")
        session_secret = settings.session_secret or os.urandom(32)
        keys = SigningKeys.from_pems(
            settings.signing_key_pem or generate_private_key_pem(), settings.retired_signing_key_pems
        )
        self.throttle = SignInThrottle(
            max_failures_per_account=settings.max_failed_sign_ins_per_account,
            max_failures_per_address=settings.max_failed_sign_ins_per_address,
            window_seconds=settings.failed_sign_in_window.total_seconds(),
            counter=sign_in_failures or MemoryFailureCounter(),
        )
        self.accounts = AccountPolicy(
            secret_key=hashlib.sha256(b"account-secrets:" + session_secret).digest(),
            link_base_url=settings.account_link_base_url.rstrip("/") if settings.account_link_base_url else None,
            reset_ttl=settings.password_reset_ttl,
            max_code_tries=settings.max_reset_code_tries,
            max_reset_requests_per_account=settings.max_reset_requests_per_account,
            max_reset_requests_per_address=settings.max_reset_requests_per_address,
            reset_request_window=settings.reset_request_window,
            counter=self.throttle.counter,
        )
        self.oauth = OAuthRuntime(
            config=OAuthConfig(
                access_token_ttl=settings.access_token_ttl,
                refresh_token_ttl=settings.refresh_token_ttl,
                authorization_code_ttl=settings.authorization_code_ttl,
                id_token_ttl=settings.id_token_ttl,
                keys=keys,
                refused_client_ids=settings.refused_client_ids,
            ),
            issuer=settings.issuer.rstrip("/") if settings.issuer else None,
            throttle=self.throttle,
            shop_name=settings.shop_name,
            sign_in_session_seconds=int(settings.sign_in_session_ttl.total_seconds()),
            cookie=SignInCookie(
                secret=hashlib.sha256(session_secret).digest(),
                secure=settings.secure_cookies,
                max_age=int(settings.sign_in_session_ttl.total_seconds()),
            ),
        )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        install_shared(app_config)
        oauth = self.oauth
        accounts = self.accounts
        customer_orders = self.customer_orders
        provide_oauth = {"oauth": Provide(lambda: oauth, sync_to_thread=False)}
        holders = self.personal_data
        provide_accounts = {
            **provide_oauth,
            "account_policy": Provide(lambda: accounts, sync_to_thread=False),
            "personal_data": Provide(lambda: holders, sync_to_thread=False),
        }
        app_config.route_handlers.extend(
            [
                Router(path="/", route_handlers=[AuthController], dependencies=provide_accounts),
                Router(
                    path="/",
                    route_handlers=[CustomerAdminController],
                    dependencies={"customer_orders": Provide(lambda: customer_orders, sync_to_thread=False)},
                ),
                # the authorize and account pages answer bad text with their own HTML error page (needs the
                # runtime's templates)
                Router(
                    path="/",
                    route_handlers=[AuthorizeController, AccountPagesController],
                    dependencies=provide_accounts,
                    exception_handlers={InvalidText: oauth.invalid_text_page},
                ),
                Router(
                    path="/",
                    route_handlers=[OAuthController, WellKnownController, ClientAdminController],
                    dependencies=provide_oauth,
                ),
            ]
        )
        # before the app's own startup hooks, which walk the document's components (the kernel's text rule)
        app_config.on_startup.insert(0, register_oauth_schemas)
        app_config.signature_namespace.update(
            {
                "AccountPolicy": AccountPolicy,
                "AccountService": AccountService,
                "CustomerService": CustomerService,
                "StaffCustomerService": StaffCustomerService,
                "PrivacyService": PrivacyService,
                "TokenService": TokenService,
                "OAuthClientService": OAuthClientService,
                "OAuthRuntime": OAuthRuntime,
                "Principal": Principal,
            }
        )
        return app_config
