"""A sibling service that serves only customer accounts: registration and profiles, with its own tokens.

    pip install shop-identity aiosqlite uvicorn       # shop-kernel comes with it
    uvicorn identity_service:app

The middleware accepts the access tokens identity stores (hashed) in its own tables.
`python identity_service.py --check` runs a smoke test against the app in-process.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar

from shop_identity import IdentityPlugin, IdentitySettings, TokenService, make_token_resolver
from shop_kernel import BearerTokenMiddleware, Unit

alchemy = SQLAlchemyAsyncConfig(
    connection_string=os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///identity.sqlite3"), create_all=True
)
app = Litestar(
    plugins=[SQLAlchemyPlugin(alchemy), IdentityPlugin(IdentitySettings(access_token_ttl=timedelta(hours=1)))],
    middleware=[BearerTokenMiddleware(make_token_resolver(alchemy.create_session_maker()))],
)


async def issue_token(customer_id: int) -> str:
    """How this service hands out a token after its own sign-in step."""
    async with alchemy.create_session_maker()() as session:
        return await TokenService(Unit(session)).issue(customer_id=customer_id, scopes=["read"], ttl=timedelta(hours=1))


def check() -> dict[str, object]:
    from litestar.testing import TestClient

    with TestClient(app) as client:
        created = client.post(
            "/api/auth/register/",
            json={
                "username": "wanjiru",
                "email": "wanjiru@example.com",
                "password": "tea-garden-1987",
                "password_confirm": "tea-garden-1987",
                "phone_number": "0712345678",
            },
        )
        token = client.blocking_portal.call(issue_token, created.json()["id"])
        profile = client.get("/api/auth/profile/", headers={"Authorization": f"Bearer {token}"})
        return {
            "registered": created.status_code,
            "profile": profile.status_code,
            "phone_number": profile.json()["phone_number"],
            "anonymous_profile": client.get("/api/auth/profile/").status_code,
        }


if __name__ == "__main__" and "--check" in sys.argv:
    sys.stdout.write(json.dumps(check()) + "\n")
