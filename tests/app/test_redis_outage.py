"""Redis away (issue 18): every request is answered without it, limits and the sign-in throttle still hold
(per process), pages come from the database, readiness stays green, and all of it returns to Redis when
Redis does. Each test stops and restarts a real redis-server of its own on the same socket."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import msgspec
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.main import create_app
from app.redis_server import EmbeddedRedis
from app.settings import RateLimits, Settings
from shop_notify.models import NotificationLog
from tests.factories import ProductWriteFactory, RegisterCustomerFactory
from tests.identity.oauth import OAuthHarness, forms_of, over_https, pkce_pair
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog
from tests.support.fakes import eventually
from tests.support.live import live_server
from tests.support.statements import statements_for
from tests.support.tcp_proxy import StaleConnectionProxy

PROBE_SECONDS = 1.0
"""app.redis_outage.RedisOutage: after a failure, Redis is tried again at most this often."""
LIMITS = RateLimits(general_per_minute=4, auth_per_minute=2, orders_per_minute=2)
NO_LIMITS = RateLimits(enabled=False)


@contextmanager
def app_on(settings: Settings, server: EmbeddedRedis, limits: RateLimits = NO_LIMITS) -> Iterator[TestClient[Litestar]]:
    """The composed app over the session's (emptied) database and `server`."""
    app = create_app(replace(settings, redis_url=server.url, rate_limits=limits))
    with TestClient(app, base_url="http://testserver.local") as http:
        yield http


def keys(server: EmbeddedRedis, pattern: str) -> list[str]:
    with redis.Redis(unix_socket_path=str(server.socket)) as client:
        return sorted(key.decode() for key in client.scan_iter(pattern))


def metric(http: TestClient[Litestar] | httpx.Client, line_start: str) -> float:
    """The value of the first /metrics sample whose line starts with `line_start` (0 when there is none)."""
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def registration() -> dict[str, Any]:
    return dict(msgspec.to_builtins(RegisterCustomerFactory.build()))


def new_product(**fields: Any) -> dict[str, Any]:
    return dict(msgspec.to_builtins(ProductWriteFactory.build(**fields)))


def order_of(product: dict[str, Any]) -> dict[str, Any]:
    return {"items": [{"product_id": product["id"], "quantity": 1}]}


def test_limited_routes_keep_their_limits_per_process_while_redis_is_away(
    settings: Settings, api: Api, catalog: Catalog, own_redis: EmbeddedRedis
) -> None:
    product = catalog.product(stock_quantity=50)
    buyer, later = api.customer(), api.customer()
    with app_on(settings, own_redis, LIMITS) as http:
        assert http.get("/api/products/").status_code == 200
        assert keys(own_redis, "shop:ratelimit:*") == ["shop:ratelimit:general:ip:testclient"]

        own_redis.stop()
        # Counted from zero in this process: the count in Redis cannot be read. Registration (2 a minute per
        # address) also counts against the address's general allowance (4), so two reads are left after it.
        registrations = [http.post("/api/auth/register/", json=registration()) for _ in range(3)]
        assert [r.status_code for r in registrations] == [201, 201, 429]
        reads = [http.get("/api/products/") for _ in range(3)]
        assert [r.status_code for r in reads] == [200, 200, 429]
        assert [r.headers["RateLimit-Remaining"] for r in reads] == ["1", "0", "0"]
        orders = [http.post("/api/orders/", json=order_of(product), headers=buyer.headers) for _ in range(3)]
        assert [r.status_code for r in orders] == [201, 201, 429]
        for refused in (registrations[-1], reads[-1], orders[-1]):
            assert refused.json()["type"] == "/problems/rate-limited"
            assert 1 <= int(refused.headers["Retry-After"]) <= 60

        own_redis.start()
        time.sleep(PROBE_SECONDS + 0.1)
        # back in Redis, where every replica counts: the restarted Redis holds only what came after
        first = http.get("/api/auth/profile/", headers=later.headers)
        assert first.status_code == 200
        assert first.headers["RateLimit-Remaining"] == "3"
        assert keys(own_redis, "shop:ratelimit:*") == [f"shop:ratelimit:general:user:{later.id}"]
        assert http.get("/api/products/").status_code == 200  # the count kept in process is not carried over


def test_public_pages_come_from_the_database_while_redis_is_away(
    settings: Settings, api: Api, catalog: Catalog, staff: Caller, own_redis: EmbeddedRedis
) -> None:
    """A process that cannot hear other processes' changes must not answer from memory (app.cache_bus)."""
    kettle = catalog.product(name="Kettle", stock_quantity=5)
    buyer = api.customer()

    def names(http: TestClient[Litestar]) -> list[str]:
        page = http.get("/api/products/")
        assert page.status_code == 200, page.text
        return sorted(product["name"] for product in page.json()["results"])

    with app_on(settings, own_redis) as http:
        assert names(http) == ["Kettle"]
        eventually(lambda: statements_for(http, "/api/products/") == 0, timeout=3)  # kept in memory

        own_redis.stop()
        eventually(lambda: statements_for(http, "/api/products/") > 0, timeout=3)  # now from the database
        assert names(http) == ["Kettle"]
        # the write stands; with the cache off nothing stale can be served
        assert http.post("/api/products/", json=new_product(name="Teapot"), headers=staff.headers).status_code == 201
        assert names(http) == ["Kettle", "Teapot"]
        assert http.get(f"/api/products/{kettle['id']}/").status_code == 200
        assert http.post("/api/orders/", json=order_of(kettle), headers=buyer.headers).status_code == 201
        assert len(http.get("/api/orders/", headers=buyer.headers).json()["results"]) == 1

        own_redis.start()
        assert names(http) == ["Kettle", "Teapot"]  # at once: no error when Redis comes back
        time.sleep(PROBE_SECONDS + 0.1)
        assert names(http) == ["Kettle", "Teapot"]
        eventually(lambda: statements_for(http, "/api/products/") == 0, timeout=5)  # kept in memory again
        assert http.post("/api/products/", json=new_product(name="Mug"), headers=staff.headers).status_code == 201
        assert names(http) == ["Kettle", "Mug", "Teapot"]  # and a write drops it again


@pytest.mark.backend
def test_the_sign_in_throttle_holds_while_redis_is_away(settings: Settings, api: Api, own_redis: EmbeddedRedis) -> None:
    user = api.customer()
    with app_on(settings, own_redis) as http, over_https(http) as secure:
        oauth = OAuthHarness(secure, api)
        url = oauth.authorize_url(oauth.register()["client_id"], challenge=pkce_pair()[1])
        sign_in = forms_of(secure.get(url).text)[0]

        def attempt(password: str) -> httpx.Response:
            return secure.post(sign_in.action, data={**sign_in.fields, "username": user.username, "password": password})

        assert attempt("wrong").status_code == 400
        assert len(keys(own_redis, "shop:sign-in-failures:*")) == 2  # the account and the address, in Redis

        own_redis.stop()
        assert [attempt("wrong").status_code for _ in range(5)] == [400] * 5
        locked = attempt(user.password)  # the sixth attempt in this process: refused, right password or not
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) > 60


def test_ready_without_redis_and_says_so(settings: Settings, own_redis: EmbeddedRedis) -> None:
    with app_on(settings, own_redis) as http:
        up = http.get("/api/ready/")
        assert (up.status_code, up.json()["status"], up.json()["checks"]["redis"]) == (200, "ready", "ok")
        assert metric(http, "shop_redis_up ") == 1.0

        own_redis.stop()
        down = http.get("/api/ready/")
        assert down.status_code == 200
        assert down.json()["status"] == "ready"
        assert down.json()["checks"]["database"] == down.json()["checks"]["migrations"] == "ok"
        assert down.json()["checks"]["redis"].startswith("unavailable")

        own_redis.start()
        assert http.get("/api/ready/").json()["checks"]["redis"] == "ok"
        assert metric(http, "shop_redis_up ") == 1.0


def test_a_notification_retry_without_redis_is_503_and_leaves_the_row_failed(
    settings: Settings, api: Api, staff: Caller, own_redis: EmbeddedRedis
) -> None:
    async def failed_sms(session: AsyncSession) -> int:
        row = NotificationLog(
            event_key="order.placed:ORD-TEST0001", topic="order.placed", order_number="ORD-TEST0001", channel="sms",
            recipient="+254712345678", status="failed", attempts=3, last_error="HTTP 500", body="Order placed",
        )  # fmt: skip
        session.add(row)
        await session.commit()
        return row.id

    row_id = api.run(failed_sms)
    with app_on(settings, own_redis) as http:
        own_redis.stop()
        refused = http.post(f"/api/notifications/{row_id}/retry/", headers=staff.headers)
        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["Retry-After"] == "10"
        [row] = http.get("/api/notifications/", headers=staff.headers).json()["results"]
        assert (row["status"], row["last_error"]) == ("failed", "HTTP 500")  # as before: it can be retried later

        own_redis.start()
        accepted = http.post(f"/api/notifications/{row_id}/retry/", headers=staff.headers)
        assert accepted.status_code == 202
        assert accepted.json()["status"] == "queued"
        assert keys(own_redis, f"*notify:{row_id}:retry:3*")  # the job is in the queue


class Load:
    """Threads sending a mix of requests to a live server; records every answer with the phase it was sent in."""

    def __init__(self, base: str, product: dict[str, Any], buyer: Caller) -> None:
        self.base = base
        self.phase = "up"
        self.answers: list[tuple[str, str, int]] = []
        self._stop = threading.Event()
        self._calls = [
            ("list", lambda http: http.get("/api/products/")),
            ("detail", lambda http: http.get(f"/api/products/{product['id']}/")),
            ("orders", lambda http: http.get("/api/orders/", headers=buyer.headers)),
            ("order", lambda http: http.post("/api/orders/", json=order_of(product), headers=buyer.headers)),
            ("list", lambda http: http.get("/api/products/?page_size=5")),
            ("register", lambda http: http.post("/api/auth/register/", json=registration())),
        ]
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(2)]

    def _run(self, offset: int) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            n = offset
            while not self._stop.is_set():
                kind, call = self._calls[n % len(self._calls)]
                phase = self.phase
                self.answers.append((phase, kind, call(http).status_code))
                n += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def test_redis_killed_under_load_costs_no_request_a_500(
    settings: Settings, api: Api, catalog: Catalog, staff: Caller, own_redis: EmbeddedRedis, tmp_path: Any
) -> None:
    """`shop serve` with rate limits on and its worker in process; Redis killed (SIGKILL) while two clients
    keep calling, then started again on the same socket."""
    product = catalog.product(stock_quantity=10_000, price="2.50")
    buyer = api.customer(phone_number="0712345678")
    env = {
        "APP_ENV": "test",
        "DEMO_DATA": "false",
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(tmp_path),
        "REDIS_URL": own_redis.url,
        "WORKER_IN_PROCESS": "true",
        "RATE_LIMITS_ENABLED": "true",
        "RATE_LIMIT_PER_MINUTE": "100000",
        "RATE_LIMIT_AUTH_PER_MINUTE": "100000",
        "RATE_LIMIT_ORDERS_PER_MINUTE": "100000",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",  # the lines are counted by their JSON `event`
    }
    with live_server(env) as (base, log), httpx.Client(base_url=base, timeout=10) as http:
        with Load(base, product, buyer) as load:
            time.sleep(1.5)
            assert own_redis.process is not None
            own_redis.process.kill()
            own_redis.process.wait()
            load.phase = "down"
            time.sleep(2.5)
        during = http.post("/api/orders/", json=order_of(product), headers=buyer.headers)
        assert during.status_code == 201
        # nothing spins while Redis is away (the worker's fetch loop once took a whole core)
        cpu = metric(http, "process_cpu_seconds_total ")
        time.sleep(2.0)
        assert metric(http, "process_cpu_seconds_total ") - cpu < 0.5
        with Load(base, product, buyer) as load_after:
            own_redis.start()
            load_after.phase = "back"
            time.sleep(PROBE_SECONDS + 1.5)

        answers = load.answers + load_after.answers
        assert {status for _, _, status in answers} <= {200, 201}, Counter(answers).most_common(5)
        served = Counter((phase, kind) for phase, kind, _ in answers)
        assert all(served[phase, kind] > 0 for phase in ("up", "down", "back") for kind in ("list", "order"))

        lines = log.read_text().splitlines()
        assert sum('"redis unreachable (' in line for line in lines) == 1  # once per outage, not per request
        assert sum('"redis reachable again after' in line for line in lines) == 1
        assert metric(http, "shop_redis_outages_total ") == 1.0
        assert metric(http, 'shop_redis_fallbacks_total{use="rate_limit"}') > 0
        assert metric(http, "shop_redis_up ") == 1.0
        assert keys(own_redis, "shop:ratelimit:general:*")  # limits counted in Redis again

        # the order placed while Redis was away is notified once it is back
        def sent() -> bool:
            rows = http.get(
                "/api/notifications/", params={"order": during.json()["order_number"]}, headers=staff.headers
            ).json()["results"]
            return sorted((row["channel"], row["status"]) for row in rows) == [("email", "sent"), ("sms", "sent")]

        eventually(sent, timeout=30, interval=0.25)


def test_a_connection_redis_dropped_while_away_is_replaced_not_reported(
    settings: Settings, own_redis: EmbeddedRedis
) -> None:
    """Over TCP a replaced Redis leaves pooled connections that look open until used: the next command on
    one finds it closed. The client reconnects and retries at once: the count still lands in Redis."""
    proxy = StaleConnectionProxy(own_redis.socket)
    try:
        app = create_app(replace(settings, redis_url=proxy.url, rate_limits=LIMITS))
        with TestClient(app, base_url="http://testserver.local") as http:
            assert http.get("/api/products/").headers["RateLimit-Remaining"] == "3"
            outages = metric(http, "shop_redis_outages_total ")
            proxy.kill_connections()
            assert http.get("/api/products/").headers["RateLimit-Remaining"] == "2"
            assert http.get("/api/products/").headers["RateLimit-Remaining"] == "1"
            with redis.Redis(unix_socket_path=str(own_redis.socket)) as direct:
                assert direct.get("shop:ratelimit:general:ip:testclient") == b"3"
            assert metric(http, "shop_redis_outages_total ") == outages
    finally:
        proxy.close()
