"""Request ids, JSON logs that carry them into background jobs, and Prometheus metrics."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Literal, cast

import httpx
import pytest
import structlog
from litestar import Litestar
from litestar.testing import TestClient

from app.main import create_app
from app.observability import ConsoleLines, SaqHeartbeatShutdownFilter, colors_wanted, logging_config
from app.settings import Settings
from shop_notify.channels import ConsoleEmail
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


def test_each_request_leaves_one_access_log_line_unless_switched_off(
    client: TestClient[Litestar], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="shop.access"):
        client.get("/api/products/categories/?page_size=2", headers={"X-Request-ID": "lb-1"})
        client.get("/api/no-such-thing/")  # never routed: no route, no line
        client.delete("/api/products/categories/")
        # refused by a middleware below the edge one: logged with the status the caller got, and its id
        refused = client.get("/api/auth/profile/", headers={"Authorization": "Bearer nope", "X-Request-ID": "lb-2"})
    assert (refused.status_code, refused.headers["X-Request-ID"]) == (401, "lb-2")
    lines = [record for record in caplog.records if record.name == "shop.access"]
    assert [(r.method, r.path, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("GET", "/api/products/categories", 200),
        ("GET", "/api/auth/profile", 401),
    ], [r.getMessage() for r in lines]
    assert [r.request_id for r in lines] == ["lb-1", "lb-2"]  # type: ignore[attr-defined]
    assert 0 < lines[0].duration_ms < 10_000  # type: ignore[attr-defined]
    caplog.clear()
    with (
        TestClient(create_app(replace(settings, access_log=False))) as quiet,
        caplog.at_level(logging.INFO, logger="shop.access"),
    ):
        assert quiet.get("/api/health/").status_code == 200
    assert not [record for record in caplog.records if record.name == "shop.access"]


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
    assert "\nshop_outbox_relay_passes_total " in after  # exported; it moves in the process that runs the relay


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
        output = log.read_text()
        # every line is JSON without a terminal escape code, except the banner `shop serve` prints for people
        lines = output.splitlines()
        banner = [line for line in lines if not line.startswith("{")]
        assert all(line.startswith(("Embedded Redis on ", "Shop API on ", "  ")) for line in banner), banner
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert all("timestamp" in record and "level" in record for record in records)
        assert "\x1b" not in output
        assert "\\u001b" not in output
        [started] = [record for record in records if str(record["event"]).startswith("Started server process")]
        assert started["logger"] == "uvicorn.error"
        assert "color_message" not in started
        [email] = [record for record in records if str(record["event"]).startswith("E-mail to ")]
        assert "\nSubject: New Order Received - " in email["event"]


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


def _formatter(log_format: Literal["json", "console"]) -> logging.Formatter:
    """The formatter every log line goes through, as `logging_config` builds it."""
    config = logging_config(Settings(log_format=log_format)).standard_lib_logging_config
    assert config is not None
    options = dict(config.formatters["standard"])
    return cast("logging.Formatter", options.pop("()")(**options))


def _records() -> list[logging.LogRecord]:
    """What uvicorn, the access log and the console e-mail channel log (the channel's record is its own)."""
    uvicorn = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (42,), None)
    uvicorn.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    access = logging.LogRecord("shop.access", logging.INFO, __file__, 1, "request", None, None)
    access.__dict__.update(method="GET", path="/api/products/", status=200, duration_ms=3.1, request_id="req-1")
    painted = logging.LogRecord("saq", logging.WARNING, __file__, 1, "\x1b[1mbold\x1b[0m claim", None, None)
    sent: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = sent.append  # type: ignore[method-assign]
    notify = logging.getLogger("shop.notify")
    notify.addHandler(catcher)
    notify.propagate = False  # kept from the handlers an earlier app in this session installed
    notify.setLevel(logging.INFO)
    try:
        asyncio.run(
            ConsoleEmail("shop@shop.example").send("ann@example.com", "Order received", "Line 1\n\nLine 2\n", "")
        )
    finally:
        notify.removeHandler(catcher)
        notify.propagate = True
        notify.setLevel(logging.NOTSET)
    [email] = sent
    return [uvicorn, access, painted, email]


def test_production_log_lines_are_json_without_escape_codes() -> None:
    formatter = _formatter("json")
    lines = [formatter.format(record) for record in _records()]
    assert all("\n" not in line and "\x1b" not in line and "\\u001b" not in line for line in lines), lines
    uvicorn, access, painted, email = (json.loads(line) for line in lines)
    assert uvicorn["event"] == "Started server process [42]"
    assert uvicorn["logger"] == "uvicorn.error"
    assert "color_message" not in uvicorn
    assert {"timestamp", "level"} <= uvicorn.keys()
    assert {key: access[key] for key in ("method", "path", "status", "duration_ms", "request_id")} == {
        "method": "GET",
        "path": "/api/products/",
        "status": 200,
        "duration_ms": 3.1,
        "request_id": "req-1",
    }
    assert painted["event"] == "bold claim"
    assert email["event"].startswith("E-mail to ann@example.com\n")
    assert "Subject: Order received\n\nLine 1\n\nLine 2" in email["event"]


def test_development_log_lines_are_text_for_people() -> None:
    formatter = _formatter("console")
    uvicorn, access, painted, email = (formatter.format(record) for record in _records())
    for text in (uvicorn, access, painted, email):
        assert not text.startswith("{")
        assert "\x1b" not in text  # no colours: the test's standard error is not a terminal
    assert "Started server process [42]" in uvicorn
    assert "[uvicorn.error]" in uvicorn
    assert "color_message" not in uvicorn
    [line] = access.splitlines()
    assert "GET /api/products/ 200 3.1 ms" in line
    assert "[shop.access]" in line
    assert "request_id=req-1" in line
    assert "bold claim" in painted
    # the e-mail reads as an e-mail: a log line, then its headers and body as lines (no `\n` escapes)
    first, *rest = email.splitlines()
    assert "E-mail to ann@example.com" in first
    assert "[shop.notify]" in first
    assert rest == [
        "    From: shop@shop.example",
        "    To: ann@example.com",
        "    Subject: Order received",
        "",
        "    Line 1",
        "",
        "    Line 2",
    ]
    assert "\\n" not in email


def test_colours_only_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    record = {"event": "Application startup complete.", "level": "info", "logger": "uvicorn.error"}
    assert "\x1b[" in ConsoleLines(colors=True)(None, "info", dict(record))
    assert "\x1b[" not in ConsoleLines(colors=False)(None, "info", dict(record))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert colors_wanted() is False
    terminal = io.StringIO()
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stderr", terminal)
    assert colors_wanted() is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert colors_wanted() is False


def test_structlog_loggers_go_through_the_same_formatter() -> None:
    """Code that logs with structlog (`structlog.get_logger("shop.access")`) gets the same lines as `logging`."""
    config = logging_config(Settings(log_format="json"))
    config.configure()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(_formatter("json"))
    access = logging.getLogger("shop.access")
    access.addHandler(handler)
    access.propagate = False
    access.setLevel(logging.INFO)
    try:
        structlog.get_logger("shop.access").info("request", method="POST", path="/api/orders/", status=201)
        structlog.get_logger("shop.access").debug("below the level")
    finally:
        access.removeHandler(handler)
        access.propagate = True
        access.setLevel(logging.NOTSET)
    [line] = out.getvalue().splitlines()
    logged = json.loads(line)
    assert logged["logger"] == "shop.access"
    assert logged["level"] == "info"
    assert (logged["event"], logged["method"], logged["path"], logged["status"]) == (
        "request",
        "POST",
        "/api/orders/",
        201,
    )
    assert "timestamp" in logged
