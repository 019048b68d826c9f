"""Each context's plugin mounts alone in a bare Litestar app, as a sibling service would mount it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog import CatalogPlugin
from shop_identity import IdentityPlugin, IdentitySettings, TokenService, make_token_resolver
from shop_kernel import BearerTokenMiddleware, Principal, Unit
from shop_notify import NotifyPlugin
from shop_ordering import OrderingPlugin
from tests.factories import RegisterCustomerFactory


def test_identity_serves_registration_and_profiles_alone(tmp_path: Path) -> None:
    import msgspec

    import shop_identity  # noqa: F401  (models join the metadata)

    alchemy = SQLAlchemyAsyncConfig(
        connection_string=f"sqlite+aiosqlite:///{tmp_path / 'identity.sqlite3'}",
        create_all=True,  # the shared metadata, which importing shop_identity filled
    )
    app = Litestar(
        plugins=[SQLAlchemyPlugin(alchemy), IdentityPlugin(IdentitySettings(access_token_ttl=timedelta(minutes=5)))],
        middleware=[BearerTokenMiddleware(make_token_resolver(alchemy.create_session_maker()))],
    )
    payload = RegisterCustomerFactory.build(phone_number="0712345678")
    with TestClient(app) as client:
        created = client.post("/api/auth/register/", json=msgspec.to_builtins(payload))
        assert created.status_code == 201
        customer_id = created.json()["id"]

        async def issue() -> str:
            async with alchemy.create_session_maker()() as session:
                assert isinstance(session, AsyncSession)
                return await TokenService(Unit(session)).issue(
                    customer_id=customer_id, scopes=["read"], ttl=timedelta(minutes=5)
                )

        token = client.blocking_portal.call(issue)
        profile = client.get("/api/auth/profile/", headers={"Authorization": f"Bearer {token}"})
        assert profile.status_code == 200
        assert profile.json()["phone_number"] == "+254712345678"
        missing = client.get("/api/nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")


def test_catalog_serves_categories_and_products_alone(tmp_path: Path) -> None:
    """A sibling service with its own token check (here: one fixed staff token) mounts only the catalog."""
    import shop_catalog  # noqa: F401  (models join the metadata)

    async def resolve(token: str) -> Principal | None:
        return (
            Principal(user_id=1, username="svc", scopes=frozenset({"write"}), is_staff=True) if token == "t" else None
        )

    alchemy = SQLAlchemyAsyncConfig(
        connection_string=f"sqlite+aiosqlite:///{tmp_path / 'catalog.sqlite3'}", create_all=True
    )
    app = Litestar(
        plugins=[SQLAlchemyPlugin(alchemy), CatalogPlugin()],
        middleware=[BearerTokenMiddleware(resolve)],
    )
    staff = {"Authorization": "Bearer t"}
    with TestClient(app) as client:
        root = client.post("/api/products/categories/", json={"name": "Books"}, headers=staff).json()
        product = {"name": "SICP", "price": "45.00", "sku": "BK-1", "categories": [root["id"]]}
        created = client.post("/api/products/", json=product, headers=staff).json()
        patched = client.patch(f"/api/products/{created['id']}/", json={"stock_quantity": 4}, headers=staff)
        assert patched.json()["stock_quantity"] == 4
        client.post("/api/products/bulk_upload/", json=[{**product, "sku": "BK-2"}], headers=staff)
        listed = client.get("/api/products/").json()
        assert [p["sku"] for p in listed["results"]] == ["BK-2", "BK-1"]
        # create_all builds the search index too (shop_catalog.search_schema)
        assert [p["sku"] for p in client.get("/api/products/?search=sicp").json()["results"]] == ["BK-2", "BK-1"]
        # the kernel's text rule comes with the plugin: no host-app set-up
        refused = client.post("/api/products/categories/", json={"name": "Bo\x00oks"}, headers=staff)
        assert (refused.status_code, refused.json()["type"]) == (400, "/problems/invalid-text")
        assert client.get("/api/products/?search=a%00b").status_code == 400
        assert client.get(f"/api/products/categories/{root['id']}/average-price/").json()["average_price"] == 45.0


def test_ordering_places_orders_alone(tmp_path: Path) -> None:
    """Ordering mounted without the catalog and identity plugins: it only needs their tables."""
    from shop_catalog import ProductService, ProductWrite
    from shop_identity import CustomerService

    alchemy = SQLAlchemyAsyncConfig(
        connection_string=f"sqlite+aiosqlite:///{tmp_path / 'ordering.sqlite3'}", create_all=True
    )

    async def resolve(token: str) -> Principal | None:
        return Principal(user_id=1, username="buyer", scopes=frozenset({"read", "write"})) if token == "t" else None

    app = Litestar(plugins=[SQLAlchemyPlugin(alchemy), OrderingPlugin()], middleware=[BearerTokenMiddleware(resolve)])
    with TestClient(app) as client:

        async def seed() -> int:
            async with alchemy.create_session_maker()() as session:
                await CustomerService(Unit(session)).register(RegisterCustomerFactory.build(username="buyer"))
                product = await ProductService(Unit(session)).create(
                    ProductWrite(name="Lamp", price=Decimal("12.50"), sku="L-1", stock_quantity=3)
                )
                return product.id

        product_id = client.blocking_portal.call(seed)
        order = client.post(
            "/api/orders/",
            json={"items": [{"product_id": product_id, "quantity": 2}]},
            headers={"Authorization": "Bearer t"},
        )
        assert order.status_code == 201
        assert order.json()["total_amount"] == "25.00"
        assert order.json()["customer"] == "buyer"


def test_notify_serves_its_log_alone(tmp_path: Path, redis_url: str) -> None:
    """Notify mounted with its own database, its SAQ queue (worker in process), and a host-provided token check;
    its worker relays the outbox to notify's own subscriber, with no list of subscribers from the host."""
    from litestar_saq import SAQConfig, SAQPlugin

    import shop_notify  # noqa: F401  (models join the metadata)
    from shop_kernel import MESSAGE_REQUESTED, MessageRequested, add_to_outbox
    from shop_notify import NotifySettings
    from tests.support.fakes import eventually

    alchemy = SQLAlchemyAsyncConfig(
        connection_string=f"sqlite+aiosqlite:///{tmp_path / 'notify.sqlite3'}", create_all=True
    )
    notify = NotifyPlugin(NotifySettings(delivery_report_secret="s"), session_maker=alchemy.create_session_maker())

    async def resolve(token: str) -> Principal | None:
        return Principal(user_id=1, username="ops", scopes=frozenset({"read"}), is_staff=True) if token == "t" else None

    app = Litestar(
        plugins=[
            SQLAlchemyPlugin(alchemy),
            notify,
            SAQPlugin(SAQConfig(queue_configs=[notify.queue_config(redis_url, in_process=True)])),
        ],
        middleware=[BearerTokenMiddleware(resolve)],
    )
    message = MessageRequested(
        template="password_changed",
        channel="email",
        recipient="a@shop.test",
        context={"name": "Ann", "username": "ann", "when": "now"},
    )

    # a message its template cannot render (a value missing) fails alone: it must not hold up the one behind it
    broken = msgspec.structs.replace(message, recipient="broken@shop.test", context={"name": "Bob"})

    async def stage() -> None:
        async with alchemy.get_engine().begin() as connection:
            await connection.run_sync(add_to_outbox, MESSAGE_REQUESTED, "alone:0", broken)
            await connection.run_sync(add_to_outbox, MESSAGE_REQUESTED, "alone:1", message)

    def logged() -> dict[str, str]:
        answer = client.get("/api/notifications/", headers={"Authorization": "Bearer t"})
        return {entry["recipient"]: entry["status"] for entry in answer.json()["results"]}

    with TestClient(app) as client:
        assert logged() == {}
        client.blocking_portal.call(stage)
        assert eventually(lambda: logged().get("a@shop.test") == "sent" and logged()) == {
            "a@shop.test": "sent",
            "broken@shop.test": "failed",
        }
        report = {"id": "ATXid_9", "status": "Success"}
        assert client.post("/api/notifications/sms/delivery-reports/s/", data=report).json() == {"status": "ignored"}
        # a form is checked as the form it is read as, whatever its Content-Type says
        for content_type in ("application/x-www-form-urlencoded", "text/plain"):
            refused = client.post(
                "/api/notifications/sms/delivery-reports/s/",
                content=b"id=ATXid%009&status=Success",
                headers={"Content-Type": content_type},
            )
            assert refused.status_code == 400
            assert refused.json()["errors"] == {
                "id": ["Contains the control character U+0000; only tab, line feed and carriage return are allowed."]
            }
        missing = client.get("/api/nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
