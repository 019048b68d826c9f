"""shop_identity: customers, registration, profiles, access tokens and the OAuth2/OpenID Connect server.

Public API for other contexts and host apps; everything else in this package is internal. Its ORM models live in
`shop_identity.models`, which host apps import for their metadata and migrations and no other context may import
(decision 161).
"""

from shop_identity.accounts import AccountPolicy, AccountService
from shop_identity.directory import Contact, contact_of, customers_named, usernames_by_id
from shop_identity.oauth.clients import ClientCreated, ClientInfo, ClientRegistration, OAuthClientService
from shop_identity.oauth.keys import SigningKeys, generate_private_key_pem, load_or_create_private_key_pem
from shop_identity.oauth.server import SCOPES
from shop_identity.oauth.throttle import FailureCounter, MemoryFailureCounter
from shop_identity.plugin import IdentityPlugin, IdentitySettings
from shop_identity.privacy import ERASED, PersonalData, tombstone_username
from shop_identity.schemas import CustomerProfile, ProfileUpdate, RegisterCustomer
from shop_identity.services import CustomerService, TokenService, hash_token, make_token_resolver
from shop_identity.staff import CustomerOrders, LastOrder, OrderSummary

__all__ = (
    "ERASED",
    "SCOPES",
    "AccountPolicy",
    "AccountService",
    "ClientCreated",
    "ClientInfo",
    "ClientRegistration",
    "Contact",
    "CustomerOrders",
    "CustomerProfile",
    "CustomerService",
    "FailureCounter",
    "IdentityPlugin",
    "IdentitySettings",
    "LastOrder",
    "MemoryFailureCounter",
    "OAuthClientService",
    "OrderSummary",
    "PersonalData",
    "ProfileUpdate",
    "RegisterCustomer",
    "SigningKeys",
    "TokenService",
    "contact_of",
    "customers_named",
    "generate_private_key_pem",
    "hash_token",
    "load_or_create_private_key_pem",
    "make_token_resolver",
    "tombstone_username",
    "usernames_by_id",
)
