"""The app as a real server process on a loopback port, for tests that need true concurrency."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    base: str
    log: Path
    process: subprocess.Popen[bytes]


@contextmanager
def live_server(env: dict[str, str], *args: str) -> Iterator[tuple[str, Path]]:
    """Run `shop serve` with `env` added to the environment; yields its base URL and its log file."""
    with served(env, *args) as server:
        yield server.base, server.log


@contextmanager
def served(env: dict[str, str], *args: str, port: int | None = None, startup_seconds: float = 60) -> Iterator[Served]:
    """`shop serve` as a process (stopped at the end unless the test killed it first).

    Output goes to a file, not a pipe: a chatty server must never block on a full pipe.
    """
    port = port or free_port()
    log = Path(tempfile.mkstemp(prefix="shop-serve-", suffix=".log")[1])
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "APP_ENV", "DEMO_DATA"}}
    # one serving process unless a test asks for `make run`'s shape (WEB_CONCURRENCY=2: two processes + a worker)
    environ.update(
        {"PORT": str(port), "LOG_LEVEL": "WARNING", "RATE_LIMITS_ENABLED": "false", "WEB_CONCURRENCY": "1", **env}
    )
    shop = Path(sys.executable).parent / "shop"
    _wait_until_free(port)
    output = log.open("w")
    process = subprocess.Popen([str(shop), "serve", *args], env=environ, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            try:
                if httpx.get(f"{base}/api/health/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start in {startup_seconds:g} s")
            time.sleep(0.1)
        yield Served(base, log, process)
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
        output.close()


def _wait_until_free(port: int, timeout: float = 30) -> None:
    """A server started again on the port of one that was just killed waits for its last process to let go."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            # as uvicorn binds: connections the killed server left in TIME_WAIT do not hold the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.1)
