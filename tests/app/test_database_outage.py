"""A database that goes away, fills its disk or turns read-only: 503 problem+json with `Retry-After`, never a 500;
readiness fails while writes cannot succeed and recovers on its own, without a restart.

Real failures, caused from outside the server as an operator would meet them: PostgreSQL crashed and started
again under load, then switched to read-only; a SQLite file on a small tmpfs filled to the last byte.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.auth import DEMO_CUSTOMER_TOKEN, DEMO_STAFF_TOKEN
from tests.support.fakes import eventually
from tests.support.live import served
from tests.support.postgres import PostgresServer, start_postgres

CUSTOMER = {"Authorization": f"Bearer {DEMO_CUSTOMER_TOKEN}"}
STAFF = {"Authorization": f"Bearer {DEMO_STAFF_TOKEN}"}


class Load:
    """Clients reading the catalog, placing orders and asking for readiness, recording every answer."""

    def __init__(self, base: str, product_id: int) -> None:
        self.base = base
        self.product_id = product_id
        self.answers: list[tuple[str, int, dict[str, str], bytes]] = []
        self.readiness: list[int] = []
        self.stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(self._order,)),
            threading.Thread(target=self._run, args=(self._read,)),
            threading.Thread(target=self._run, args=(self._ready,)),
        ]

    def _run(self, step: Any) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                step(client)

    def _record(self, name: str, answer: httpx.Response) -> None:
        self.answers.append((name, answer.status_code, dict(answer.headers), answer.content))

    def _order(self, client: httpx.Client) -> None:
        body = {"items": [{"product_id": self.product_id, "quantity": 1}]}
        self._record("order", client.post("/api/orders/", json=body, headers=CUSTOMER))

    def _read(self, client: httpx.Client) -> None:
        self._record("detail", client.get(f"/api/products/{self.product_id}/"))
        self._record("page", client.get("/api/products/", params={"page": 1, "min_price": str(uuid.uuid4().int % 50)}))
        self._record("my orders", client.get("/api/orders/", headers=CUSTOMER))

    def _ready(self, client: httpx.Client) -> None:
        status = client.get("/api/ready/").status_code
        if not self.readiness or self.readiness[-1] != status:
            self.readiness.append(status)
        time.sleep(0.05)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def statuses(self) -> Counter[int]:
        return Counter(status for _name, status, _headers, _body in self.answers)


def assert_only_outage_answers(load: Load) -> None:
    """Every answer a success or a 503 problem document that says when to come back."""
    unexpected = [
        (name, status, body[:300]) for name, status, _h, body in load.answers if status not in (200, 201, 503)
    ]
    assert not unexpected, unexpected
    for _name, status, headers, body in load.answers:
        if status == 503:
            assert headers["content-type"] == "application/problem+json", body
            assert int(headers["retry-after"]) > 0
            assert b'"status":503' in body
            assert b"nothing was changed" in body


def _stock_up(base: str) -> int:
    [product] = httpx.get(f"{base}/api/products/", params={"search": "CI-SK-26"}).json()["results"]
    answer = httpx.patch(f"{base}/api/products/{product['id']}/", json={"stock_quantity": 1_000_000}, headers=STAFF)
    assert answer.status_code == 200, answer.text
    return int(product["id"])


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def test_postgres_crashing_under_load_answers_503_then_recovers(own_postgres: PostgresServer, tmp_path: Path) -> None:
    env = {"DATABASE_URL": own_postgres.create_database("outage"), "VAR_DIR": str(tmp_path / "var")}
    with served(env, "--setup") as server:
        product_id = _stock_up(server.base)
        with Load(server.base, product_id) as load:
            eventually(lambda: load.statuses()[201] >= 20, timeout=30)
            own_postgres.crash()
            eventually(lambda: load.statuses()[503] >= 10 and load.readiness[-1] == 503, timeout=30)
            down_for = time.monotonic()
            own_postgres.start_again()
            eventually(lambda: load.readiness[-1] == 200, timeout=30)
            recovered_after = time.monotonic() - down_for
            served_before = load.statuses()[201]
            eventually(lambda: load.statuses()[201] >= served_before + 10, timeout=30)

            # a database that takes no writes (as a standby would): reads go on, writes and readiness say 503
            own_postgres.sql("ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_reload_conf()")
            eventually(lambda: load.readiness[-1] == 503, timeout=30)
            refused = sum(1 for name, status, *_ in load.answers if name == "order" and status == 503)
            eventually(lambda: sum(1 for n, s, *_ in load.answers if n == "order" and s == 503) >= refused + 5)
            assert any(name == "detail" and status == 200 for name, status, *_ in load.answers[-20:])
            own_postgres.sql("ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()")
            eventually(lambda: load.readiness[-1] == 200, timeout=30)
            served_before = load.statuses()[201]
            eventually(lambda: load.statuses()[201] >= served_before + 10, timeout=30)
    assert_only_outage_answers(load)
    assert load.readiness == [200, 503, 200, 503, 200]
    assert recovered_after < 30


def _mount_tmpfs(target: Path, size: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], check=True, capture_output=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"cannot mount a tmpfs here ({exc}); the full-disk test needs root or CAP_SYS_ADMIN", file=sys.stderr)
        return False
    return True


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "16m"):
        pytest.skip("a full disk needs a tmpfs, and this machine refused to mount one (not root?)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)


def _fill(disk: Path) -> Path:
    """Take every free byte of `disk` (unbuffered: a buffered close would raise at the end)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as file:
        for size in (65536, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    file.write(b"\0" * size)
    return filler


def test_a_full_sqlite_disk_answers_503_and_recovers_without_restart(small_disk: Path, tmp_path: Path) -> None:
    database = small_disk / "shop.sqlite3"
    env = {
        "DATABASE_URL": f"sqlite:///{database}",
        "VAR_DIR": str(tmp_path / "var"),  # Redis and keys elsewhere: only the database's disk fills
        "READY_MIN_FREE_DISK_BYTES": str(256 * 1024),
    }
    with served(env, "--setup") as server:
        product_id = _stock_up(server.base)
        with Load(server.base, product_id) as load:
            eventually(lambda: load.statuses()[201] >= 20, timeout=30)
            filler = _fill(small_disk)
            eventually(lambda: load.readiness[-1] == 503, timeout=30)
            failed_orders = sum(1 for name, status, *_ in load.answers if name == "order" and status == 503)
            eventually(lambda: sum(1 for n, s, *_ in load.answers if n == "order" and s == 503) > failed_orders + 5)
            assert sum(1 for name, status, *_ in load.answers[-30:] if name == "detail" and status == 200)
            filler.unlink()
            eventually(lambda: load.readiness[-1] == 200, timeout=30)
            placed = load.statuses()[201]
            eventually(lambda: load.statuses()[201] >= placed + 10, timeout=30)

    assert_only_outage_answers(load)
    assert load.readiness == [200, 503, 200]
    storage = [body for _n, status, _h, body in load.answers if status == 503 and b"storage-full" in body]
    assert storage, "a full disk is reported as such"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stock = connection.execute("SELECT stock_quantity FROM catalog_product WHERE id = ?", (product_id,)).fetchone()
        items = connection.execute(
            "SELECT coalesce(sum(quantity), 0) FROM ordering_order_item WHERE product_id = ?", (product_id,)
        ).fetchone()
    assert stock[0] + items[0] == 1_000_000, "every order that was refused left no stock taken and no row behind"
