"""Request ids, JSON logs that carry them into background jobs, and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.main import create_app
from app.observability import SaqHeartbeatShutdownFilter
from app.settings import Settings
from tests.support.api import Api
from tests.support.catalog import Catalog
from tests.support.fakes import eventually
from tests.support.live import live_server

HEX_ID = re.compile(r"[0-9a-f]{32}")


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + ("{" if labels else " ")):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_every_response_carries_a_request_id(client: TestClient[Litestar]) -> None:
    ok = client.get("/api/products/categories/")
    assert HEX_ID.fullmatch(ok.headers["X-Request-ID"])
    unrouted = client.get("/api/no-such-thing/")
    assert unrouted.status_code == 404
    assert HEX_ID.fullmatch(unrouted.headers["X-Request-ID"])
    assert ok.headers["X-Request-ID"] != client.get("/api/products/categories/").headers["X-Request-ID"]


def test_a_callers_request_id_is_kept_only_when_well_formed(client: TestClient[Litestar]) -> None:
    assert client.get("/api/health/", headers={"X-Request-ID": "lb-7f3a.42"}).headers["X-Request-ID"] == "lb-7f3a.42"
    for hostile in ("two words", "x" * 65, "id;rm", "a\tb", ""):
        answered = client.get("/api/health/", headers={"X-Request-ID": hostile}).headers["X-Request-ID"]
        assert HEX_ID.fullmatch(answered), hostile


def test_metrics_count_requests_per_route_stock_outs_and_the_outbox(
    client: TestClient[Litestar], api: Api, catalog: Catalog
) -> None:
    before = client.get("/metrics").text
    buyer = api.customer()
    product = catalog.product(stock_quantity=1, price="5.00")
    order = {"items": [{"product_id": product["id"], "quantity": 1}]}
    assert client.post("/api/orders/", json=order, headers=buyer.headers).status_code == 201
    assert client.post("/api/orders/", json=order, headers=buyer.headers).status_code == 400
    client.get(f"/api/orders/{10**6}/", headers=buyer.headers)

    scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    after = scraped.text
    assert (
        _metric(after, "shop_orders_rejected_stock_out_total")
        == _metric(before, "shop_orders_rejected_stock_out_total") + 1
    )
    assert _metric(after, "shop_orders_placed_total") == _metric(before, "shop_orders_placed_total") + 1
    # one series per route template, not per order id
    labels = {"method": "POST", "path": "/api/orders", "status_code": "400"}
    assert _metric(after, "shop_requests_total", **labels) == _metric(before, "shop_requests_total", **labels) + 1
    assert _metric(after, "shop_requests_total", path="/api/orders/{order_id}", status_code="404") >= 1
    assert 'path="/api/orders/1000000"' not in after
    assert _metric(after, "shop_request_duration_seconds_count", path="/api/orders", status_code="201") >= 1
    # the test app runs no worker: the order's event waits in the outbox
    assert _metric(after, "shop_outbox_pending") >= 1
    assert _metric(after, "shop_outbox_lag_seconds") >= 0


def test_log_lines_are_json_and_jobs_log_under_the_request_that_caused_them(tmp_path: Path) -> None:
    """A real `shop serve` (demo data, in-process worker): the order's notification jobs log with its request id."""
    env = {"APP_ENV": "development", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json", "VAR_DIR": str(tmp_path)}
    with live_server(env, "--setup") as (base, log):
        placed = httpx.post(
            f"{base}/api/orders/",
            json={"items": [{"product_id": 1, "quantity": 1}]},
            headers={"Authorization": "Bearer demo-customer-token-999", "X-Request-ID": "order-req-1"},
        )
        assert placed.status_code == 201, placed.text
        assert placed.headers["X-Request-ID"] == "order-req-1"

        def job_lines() -> list[dict[str, object]]:
            lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
            return [line for line in lines if str(line.get("event", "")).startswith("notification ")]

        def sent() -> list[dict[str, object]]:
            return [line for line in job_lines() if str(line["event"]).endswith(": sent")]

        eventually(lambda: len(sent()) >= 2, timeout=20)
        assert len(sent()) == 2  # SMS and e-mail
        assert all(line["request_id"] == "order-req-1" for line in sent())
        assert all({"timestamp", "level", "logger"} <= line.keys() for line in sent())
        records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        assert records
        assert all("timestamp" in record and "level" in record for record in records)


def test_a_clean_stop_of_the_in_process_worker_logs_no_error(
    settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    """litestar-saq's heartbeat thread reported a crash (ERROR, with a traceback) on every orderly stop."""
    with TestClient(create_app(replace(settings, worker_in_process=True))) as worker_app:
        assert worker_app.get("/api/health/").status_code == 200
    output = capfd.readouterr()
    assert "HeartbeatManager thread crashed" not in output.out + output.err


def _record(message: str, error: BaseException | None) -> logging.LogRecord:
    exc_info = (type(error), error, None) if error else None
    return logging.LogRecord("litestar_saq.heartbeat", logging.ERROR, __file__, 1, message, None, exc_info)


def test_only_the_heartbeat_threads_clean_stop_is_dropped() -> None:
    keep = SaqHeartbeatShutdownFilter().filter
    assert not keep(
        _record("HeartbeatManager thread crashed", RuntimeError("Event loop stopped before Future completed."))
    )
    assert keep(_record("HeartbeatManager thread crashed", RuntimeError("Redis went away")))
    assert keep(_record("HeartbeatManager thread crashed", ValueError("Event loop stopped before Future completed.")))
    assert keep(_record("something else", RuntimeError("Event loop stopped before Future completed.")))
