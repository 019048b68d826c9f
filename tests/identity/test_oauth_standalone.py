"""The identity plugin's OAuth server mounted alone, configured only through `IdentitySettings`."""

from __future__ import annotations

from pathlib import Path

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar
from litestar.testing import TestClient

import shop_identity
from shop_identity import (
    ClientRegistration,
    IdentityPlugin,
    IdentitySettings,
    OAuthClientService,
    SigningKeys,
    generate_private_key_pem,
    make_token_resolver,
)
from shop_kernel import BearerTokenMiddleware, Unit


def test_a_sibling_service_mounts_the_authorization_server(tmp_path: Path) -> None:
    assert shop_identity.IdentityPlugin is IdentityPlugin
    current, retired = generate_private_key_pem(), generate_private_key_pem()
    alchemy = SQLAlchemyAsyncConfig(connection_string=f"sqlite+aiosqlite:///{tmp_path / 'id.sqlite3'}", create_all=True)
    settings = IdentitySettings(
        issuer="https://id.example/",
        signing_key_pem=current,
        retired_signing_key_pems=(retired,),
        session_secret=b"sibling-secret",
        secure_cookies=True,
    )
    app = Litestar(
        plugins=[SQLAlchemyPlugin(alchemy), IdentityPlugin(settings)],
        middleware=[BearerTokenMiddleware(make_token_resolver(alchemy.create_session_maker()))],
    )
    with TestClient(app, base_url="https://id.example") as client:
        metadata = client.get("/.well-known/openid-configuration").json()
        assert metadata["issuer"] == "https://id.example"
        assert metadata["jwks_uri"] == "https://id.example/oauth/jwks"
        kids = [key["kid"] for key in client.get("/oauth/jwks").json()["keys"]]
        assert kids == [SigningKeys.from_pems(current).kid, SigningKeys.from_pems(retired).kid]
        assert client.get("/oauth/authorize?response_type=code&client_id=unknown").status_code == 400

        async def register() -> str:
            async with alchemy.create_session_maker()() as session:
                created = await OAuthClientService(Unit(session)).create(
                    ClientRegistration(name="Sibling app", redirect_uris=["https://app.example/cb"])
                )
                return created.client_id

        client_id = client.blocking_portal.call(register)
        page = client.get(
            "/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
            },
        )
        assert page.status_code == 200, page.text
        assert "Secure" in page.headers["set-cookie"]


def test_without_a_key_the_plugin_makes_one_for_the_process() -> None:
    first, second = IdentityPlugin(), IdentityPlugin()
    assert first.oauth.config.keys.kid != second.oauth.config.keys.kid
