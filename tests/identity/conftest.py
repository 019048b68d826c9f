"""Fixtures for the OAuth tests: the test client over https and a harness that registers clients."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.factories import RegisterCustomerFactory
from tests.support.api import Caller
from tests.support.live import free_port, live_server


@dataclass(frozen=True)
class LiveShop:
    """The app as a real server on a loopback port, with a customer and registered clients."""

    base: str
    public_client_id: str
    confidential_client_id: str
    confidential_client_secret: str
    user: Caller
    redirect_uri: str


@pytest.fixture(scope="session")
def live_shop(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LiveShop]:
    """One `shop serve` process for the tests that need real HTTP (client libraries, the browser)."""
    var_dir = tmp_path_factory.mktemp("live-oauth")
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": f"sqlite:///{var_dir / 'shop.sqlite3'}",
        "VAR_DIR": str(var_dir),
        "REDIS_URL": redis_url,
        "WORKER_IN_PROCESS": "false",
    }
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    with live_server(env, "--setup") as (base, _log):
        public = _create_client(env, "--name", "Shop web app", "--public", "--redirect-uri", redirect_uri)
        confidential = _create_client(
            env, "--name", "Back office", "--confidential", "--redirect-uri", redirect_uri, "--introspect"
        )
        payload = RegisterCustomerFactory.build()
        registered = httpx.post(f"{base}/api/auth/register/", json=msgspec.to_builtins(payload))
        assert registered.status_code == 201, registered.text
        user = Caller(
            id=registered.json()["id"],
            username=payload.username,
            token="",
            password=payload.password,
            profile=registered.json(),
        )
        yield LiveShop(
            base=base,
            public_client_id=public["client_id"],
            confidential_client_id=confidential["client_id"],
            confidential_client_secret=confidential["client_secret (shown once)"],
            user=user,
            redirect_uri=redirect_uri,
        )


def _create_client(env: dict[str, str], *args: str) -> dict[str, str]:
    """Register a client with the real CLI against the live server's database."""
    environ = {**os.environ, **env}
    shop = Path(sys.executable).parent / "shop"
    done = subprocess.run(
        [str(shop), "create-oauth-client", *args], env=environ, capture_output=True, text=True, check=True
    )
    return dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
