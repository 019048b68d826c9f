"""HTTP endpoints of the identity context (`/api/auth/...`)."""

from __future__ import annotations

from litestar import Controller, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from shop_identity.models import Customer
from shop_identity.schemas import CustomerProfile, ProfileUpdate, RegisterCustomer
from shop_identity.services import CustomerService
from shop_kernel import Principal, bearer_security, require_customer, require_scopes

__all__ = ("AuthController", "provide_customer_service", "to_profile")


async def provide_customer_service(db_session: NamedDependency[AsyncSession]) -> CustomerService:
    return CustomerService(db_session)


def to_profile(customer: Customer) -> CustomerProfile:
    return CustomerProfile(
        id=customer.id,
        username=customer.username,
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        phone_number=customer.phone_number,
        is_staff=customer.is_staff,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


class AuthController(Controller):
    path = "/api/auth"
    tags = ["Customers"]
    dependencies = {"customers": provide_customer_service}

    @post(
        "/register/",
        operation_id="registerCustomer",
        summary="Register a customer",
        description=(
            "Creates a customer account. Passwords must match, be at least 8 characters, not entirely "
            "numeric, not common and not close to the username or e-mail. Phone numbers are stored in "
            "E.164 form (default region Kenya). Invalid fields answer 400 with an `errors` member keyed "
            "by field."
        ),
        status_code=201,
    )
    async def register(
        self, customers: NamedDependency[CustomerService], data: JSONBody[RegisterCustomer]
    ) -> CustomerProfile:
        return to_profile(await customers.register(data))

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
            "such fields are ignored."
        ),
        guards=[require_customer, require_scopes("write")],
        security=bearer_security("write"),
    )
    async def replace_profile(
        self,
        customers: NamedDependency[CustomerService],
        principal: NamedDependency[Principal],
        data: JSONBody[ProfileUpdate],
    ) -> CustomerProfile:
        return to_profile(await customers.update_profile(principal.require_user_id(), data))

    @patch(
        "/profile/",
        operation_id="updateProfile",
        summary="Partially update the caller's profile",
        guards=[require_customer, require_scopes("write")],
        security=bearer_security("write"),
    )
    async def update_profile(
        self,
        customers: NamedDependency[CustomerService],
        principal: NamedDependency[Principal],
        data: JSONBody[ProfileUpdate],
    ) -> CustomerProfile:
        return to_profile(await customers.update_profile(principal.require_user_id(), data))
