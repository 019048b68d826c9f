"""The three roles of the image, run as the container runs them (there is no Docker engine here).

The environment is built the way the Dockerfile builds it: the files its build stage copies, synced with
its own `uv sync` line into a fresh, non-editable virtual environment. Each role is then started with the
command of its Kubernetes manifest, the image's ENV and the ConfigMap and Secret of deploy/k8s, against a
throwaway PostgreSQL and Redis.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from app.redis_server import EmbeddedRedis
from tests.deploy.files import ROOT, container, dockerfile_environment, dockerfile_stages, manifest, pod_spec
from tests.support.fakes import eventually
from tests.support.live import free_port
from tests.support.uv import uv_command

IMAGE_VENV = "/opt/shop/venv"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's virtual environment: the build stage's COPY sources synced by its last `uv sync` line."""
    build = dockerfile_stages()["build"]
    source = tmp_path_factory.mktemp("image-src")
    for copy in build.all("COPY"):
        if copy.startswith("--from="):
            continue
        *paths, _destination = copy.split()
        for path in paths:
            origin = ROOT / path
            if origin.is_dir():
                shutil.copytree(origin, source / path, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(origin, source / path)
    sync = build.all("RUN")[-1]
    command = shlex.split(sync[sync.index("uv sync") :])
    venv = tmp_path_factory.mktemp("image") / "venv"
    environ = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": os.path.realpath(sys.executable),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
    }
    environ.pop("VIRTUAL_ENV", None)
    subprocess.run([*uv_command(), *command[1:]], cwd=source, env=environ, check=True, capture_output=True, timeout=300)
    shutil.rmtree(source)  # non-editable: the environment must not need the sources
    return venv


@pytest.fixture(scope="module")
def queue_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def role_env(image: Path, queue_redis: str, database_factory: Callable[[str], str], tmp_path: Path) -> dict[str, str]:
    """The environment of a pod: the image's ENV, the ConfigMap, the example Secret with working values."""
    env = dict(dockerfile_environment())
    env["PATH"] = env["PATH"].replace(IMAGE_VENV, str(image)).replace("${PATH}", os.environ["PATH"])
    # the image ships bytecode compiled at build time (UV_COMPILE_BYTECODE); here the first process writes it
    del env["PYTHONDONTWRITEBYTECODE"]
    env |= manifest("ConfigMap", "shop-config")["data"]
    env |= manifest("Secret", "shop-secrets")["stringData"]
    env |= {
        "DATABASE_URL": database_factory("postgresql"),
        "REDIS_URL": queue_redis,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "VAR_DIR": str(tmp_path / "var"),  # the pod's emptyDir
        "HOME": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    if "OAUTH_SIGNING_KEY_FILE" in env:  # the pod's secret volume
        key = tmp_path / "signing-key.pem"
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
            check=True,
            capture_output=True,
        )
        env["OAUTH_SIGNING_KEY_FILE"] = str(key)
    return env


def role_command(name: str, kind: str = "Deployment") -> list[str]:
    return list(container(manifest(kind, name))["command"])


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def api(env: dict[str, str], log: Path) -> Iterator[str]:
    """The api container's command on a free loopback port instead of 0.0.0.0:8000."""
    command = role_command("shop-api")
    port = free_port()
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    base = f"http://127.0.0.1:{port}"
    with running(command, env, log) as process:

        def answers() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/api/health/").status_code == 200
            except httpx.TransportError:
                return False

        eventually(answers, timeout=30)
        yield base
        process.send_signal(signal.SIGTERM)  # what the kubelet sends
        # uvicorn shuts down gracefully, then re-raises SIGTERM (which a container's PID 1 ignores: exit 0)
        assert process.wait(timeout=15) in {0, -signal.SIGTERM}, log.read_text()
        assert "Application shutdown complete." in log.read_text()


def test_migrate_then_api_then_worker_as_the_cluster_runs_them(role_env: dict[str, str], tmp_path: Path) -> None:
    # An api replica started before the migration serves liveness but is not ready, and migrates nothing.
    with api(role_env, tmp_path / "early-api.log") as base:
        early = httpx.get(f"{base}/api/ready/")
        assert early.status_code == 503
        assert early.json()["checks"]["migrations"] == "pending (database at no revision)"

    migrate = subprocess.run(
        role_command("shop-migrate", kind="Job"), env=role_env, capture_output=True, text=True, timeout=120, check=False
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "database is at the latest migration" in migrate.stdout

    with api(role_env, tmp_path / "api.log") as base:
        assert httpx.get(f"{base}/api/health/").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/api/ready/")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "writes": "ok", "redis": "ok"}
        # production settings: the demo token is refused even though nobody created it here
        demo = httpx.get(f"{base}/api/auth/profile/", headers={"Authorization": "Bearer long-lasting-token-999"})
        assert demo.status_code == 401
        assert httpx.get(f"{base}/api/products/").status_code == 200
    # production logs, uvicorn's included: one JSON object per line, no terminal escape codes
    api_log = (tmp_path / "api.log").read_text()
    records = [json.loads(line) for line in api_log.splitlines()]
    assert any(record["event"] == "Application startup complete." for record in records), api_log
    assert all({"timestamp", "level", "logger", "event"} <= record.keys() for record in records), api_log
    assert "\x1b" not in api_log
    assert "\\u001b" not in api_log

    queue = redis.Redis.from_url(role_env["REDIS_URL"])
    queue.delete("saq:notify:stats")
    with running(role_command("shop-worker"), role_env, tmp_path / "worker.log") as worker:
        # the worker reports itself to its queue once it has started (and installed its SIGTERM handler)
        eventually(lambda: worker.poll() is None and queue.zcard("saq:notify:stats") > 0, timeout=30)
        worker.send_signal(signal.SIGTERM)
        # it must exit by itself within the pod's grace period, after which the kubelet would SIGKILL it
        grace = pod_spec(manifest("Deployment", "shop-worker"))["terminationGracePeriodSeconds"]
        try:
            stopped = worker.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            stopped = None
        assert stopped == 0, (tmp_path / "worker.log").read_text()
