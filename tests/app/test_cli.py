"""The `shop` command: migrate, seed demo data, create staff, serve."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

import app.settings as settings_module
from app.cli import main
from app.main import create_app
from shop_identity import SCOPES, generate_private_key_pem
from tests.support.fakes import eventually
from tests.support.live import live_server, served


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A development environment with its own SQLite file; settings are re-read for each test."""
    monkeypatch.setattr(settings_module, "_settings", None)
    values = {"APP_ENV": "development", "VAR_DIR": str(tmp_path / "var")}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return values


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.output


def test_migrate_then_seed_demo_is_idempotent(env: dict[str, str]) -> None:
    assert invoke("migrate") == (0, "database is at the latest migration\n")
    assert (Path(env["VAR_DIR"]) / "shop.sqlite3").exists()
    assert invoke("seed-demo") == (0, "demo data created\n")
    database = Path(env["VAR_DIR"]) / "shop.sqlite3"
    docs_client = "SELECT redirect_uris FROM identity_oauth_client WHERE client_id = 'shop-api-docs'"
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        assert db.execute(docs_client).fetchone()[0].splitlines() == [
            f"http://{host}/schema/assets/swagger-ui-5.18.2/oauth2-redirect.html"
            for host in ("127.0.0.1", "localhost", "[::1]")
        ]
        db.execute("DELETE FROM identity_oauth_client WHERE client_id = 'shop-api-docs'")
    assert invoke("seed-demo") == (0, "database already has data; demo data left as is\n")
    # a database seeded before the docs page had a client gets it on the next seed
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute(docs_client).fetchone() is not None


def test_seed_demo_is_refused_in_production(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{env['VAR_DIR']}/prod.sqlite3")
    monkeypatch.setenv("SECRET_KEY", "p" * 40)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("OAUTH_ISSUER", "https://shop.example")
    monkeypatch.setenv("OAUTH_SIGNING_KEY", generate_private_key_pem())
    code, output = invoke("seed-demo")
    assert code == 1
    assert "never created in production" in output


def test_create_token_prints_a_working_token_for_an_existing_user(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_IN_PROCESS", "false")  # the app below only answers two requests
    invoke("migrate")
    invoke("seed-demo")
    result = CliRunner().invoke(main, ["create-token", "--username", "JOHN_DOE", "--scopes", "read,openid"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()  # only the token on standard output, for TOKEN=$(shop create-token ...)
    assert len(token) >= 40
    assert "scopes read openid; expires in 3600 s" in result.stderr
    with TestClient(create_app(settings_module.get_settings())) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/auth/profile/", headers=headers).json()["username"] == "john_doe"
        assert client.patch("/api/auth/profile/", headers=headers, json={"first_name": "J"}).status_code == 403

    assert invoke("create-token", "--username", "nobody") == (1, "Error: no active user 'nobody'\n")
    code, output = invoke("create-token", "--username", "john_doe", "--scopes", "read admin")
    assert code == 1
    assert output == f"Error: unknown scope admin; --scopes takes one or more of: {', '.join(SCOPES)}\n"
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{env['VAR_DIR']}/shop.sqlite3")
    monkeypatch.setenv("SECRET_KEY", "p" * 40)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("OAUTH_ISSUER", "https://shop.example")
    monkeypatch.setenv("OAUTH_SIGNING_KEY", generate_private_key_pem())
    monkeypatch.setattr(settings_module, "_settings", None)
    code, output = invoke("create-token", "--username", "john_doe")
    assert code == 1
    assert "create-token is for development; in production sign in through OAuth2" in output


def test_configuration_errors_are_reported_not_raised(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    code, output = invoke("migrate")
    assert code == 1
    assert "configuration error: DATABASE_URL is required in production" in output


def test_create_staff_user_with_token(env: dict[str, str]) -> None:
    invoke("migrate")
    code, output = invoke(
        "create-staff-user",
        "--username",
        "ops",
        "--email",
        "ops@shop.example",
        "--token",
        input="Xk-9vq-Lr7t\nXk-9vq-Lr7t\n",
    )
    assert code == 0, output
    assert "staff user 'ops' created" in output
    assert "access token (shown once): " in output


def test_create_staff_user_applies_the_password_policy(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("migrate")
    monkeypatch.setenv("SHOP_STAFF_PASSWORD", "12345678")
    code, output = invoke("create-staff-user", "--username", "ops", "--email", "ops@shop.example")
    assert code == 1
    assert "password: This password is too common. This password is entirely numeric." in output


def test_serve_with_setup_is_what_make_run_starts(tmp_path: Path) -> None:
    """`shop serve --setup` as a real process: migrates a new SQLite file, seeds, starts Redis and serves the demo
    token; what it prints is text for people, without a warning."""
    env = {"VAR_DIR": str(tmp_path / "var"), "LOG_LEVEL": "INFO"}
    with live_server(env, "--setup") as (base, log):
        profile = httpx.get(f"{base}/api/auth/profile/", headers={"Authorization": "Bearer long-lasting-token-999"})
        assert profile.status_code == 200
        assert profile.json()["is_staff"] is True
        assert httpx.get(f"{base}/api/ready/").json()["checks"] == {
            "database": "ok",
            "migrations": "ok",
            "writes": "ok",
            "redis": "ok",
        }
        assert httpx.get(f"{base}/schema/openapi.json").status_code == 200
        placed = httpx.post(
            f"{base}/api/orders/",
            json={"items": [{"product_id": 1, "quantity": 1}]},
            headers={"Authorization": "Bearer demo-customer-token-999"},
        )
        assert placed.status_code == 201, placed.text
        eventually(lambda: "    Subject: New Order Received" in log.read_text(), timeout=20)  # the console e-mail
        output = log.read_text()  # up to here: the start and the serving, not the stop
    assert f"API docs:   {base}/schema" in output
    assert "Demo staff token:    Authorization: Bearer long-lasting-token-999" in output
    # no warning at start: SQLAlchemy's SAWarning on the lower() indexes was printed twice by the first migration
    assert not re.search(r"\w*Warning: ", output), output
    assert not re.search(r"\[(warning|error|critical) *\]", output), output
    # development logs are text for people (no JSON, no colour codes outside a terminal), uvicorn's lines too
    assert not any(line.startswith("{") for line in output.splitlines()), output
    assert "\x1b" not in output
    assert re.search(r"\[info +\] Application startup complete\. +\[uvicorn\.error\]", output), output
    # the e-mail prints as an e-mail: its lines below the log line, not one string full of `\n`
    email = output[output.index("E-mail to admin@shop.example") :]
    assert "\n    To: admin@shop.example\n    Subject: New Order Received - " in email
    assert "\\n" not in email.split("\n", 1)[0]
    eventually(lambda: not (tmp_path / "var" / "redis.sock").exists(), timeout=10)  # Redis died with the server


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def test_serve_runs_a_process_per_core_one_worker_and_one_redis_and_none_outlives_it(tmp_path: Path) -> None:
    """`make run`'s shape: WEB_CONCURRENCY serving processes behind one port, one `shop worker`, one Redis; a
    SIGKILL of `shop serve` takes every one of them down."""
    env = {"VAR_DIR": str(tmp_path / "var"), "WEB_CONCURRENCY": "2"}
    with served(env, "--setup") as server:
        children = _children(server.process.pid)
        commands = [_command(child) for child in children]
        [redis_server] = [child for child, command in zip(children, commands, strict=True) if "redis-server" in command]
        assert sum(command.rstrip().endswith("shop worker") for command in commands) == 1, commands
        # Ctrl-C at the terminal reaches `shop serve`'s process group, not Redis: it stops after the worker
        assert os.getpgid(redis_server) != os.getpgid(server.process.pid)
        serving = [child for child in children if "spawn_main" in _command(child)]  # uvicorn's processes
        assert len(serving) == 2, commands
        assert "Serving processes: 2" in server.log.read_text()
        profile = httpx.get(
            f"{server.base}/api/auth/profile/", headers={"Authorization": "Bearer long-lasting-token-999"}
        )
        assert profile.status_code == 200
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        descendants = children + [grandchild for child in children for grandchild in _children(child)]
        eventually(lambda: not any(_command(pid) for pid in descendants), timeout=30)


def test_search_reindex_rebuilds_a_lost_index(env: dict[str, str]) -> None:
    assert invoke("migrate")[0] == 0
    database = Path(env["VAR_DIR"]) / "shop.sqlite3"
    found = "SELECT rowid FROM catalog_product_search WHERE catalog_product_search MATCH 'kettle'"
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute(
            "INSERT INTO catalog_product (name, description, price, sku, stock_quantity, is_active, created_at,"
            " updated_at) VALUES ('Kettle', '', 9.5, 'K-1', 1, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        assert db.execute(found).fetchall() == [(1,)]  # the trigger indexed it
        db.execute("INSERT INTO catalog_product_search(catalog_product_search) VALUES ('delete-all')")
        assert db.execute(found).fetchall() == []
    assert invoke("search-reindex") == (0, "search index rebuilt: 1 products\n")
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute(found).fetchall() == [(1,)]
