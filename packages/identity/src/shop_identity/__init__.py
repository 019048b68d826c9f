"""shop_identity: customers, registration, profiles, access tokens (and later the OAuth2 server).

Public API for other contexts and host apps; everything else in this package is internal.
"""

from shop_identity.models import AccessToken, Customer
from shop_identity.plugin import IdentityPlugin, IdentitySettings
from shop_identity.schemas import CustomerProfile, ProfileUpdate, RegisterCustomer
from shop_identity.services import CustomerService, TokenService, hash_token, make_token_resolver

__all__ = (
    "AccessToken",
    "Customer",
    "CustomerProfile",
    "CustomerService",
    "IdentityPlugin",
    "IdentitySettings",
    "ProfileUpdate",
    "RegisterCustomer",
    "TokenService",
    "hash_token",
    "make_token_resolver",
)
