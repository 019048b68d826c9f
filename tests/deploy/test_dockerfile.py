"""The image: built from the lock with uv, run as a non-root user, the api role by default."""

from __future__ import annotations

from tests.deploy.files import ROOT, dockerfile_command, dockerfile_environment, dockerfile_stages

API_COMMAND = [
    *("uvicorn", "--factory", "app.asgi:create_app"),
    *("--host", "0.0.0.0", "--port", "8000", "--proxy-headers"),  # noqa: S104 - all interfaces of the container
]


def test_build_and_runtime_share_the_python_base_the_environment_points_at() -> None:
    stages = dockerfile_stages()
    assert stages["build"].base == stages["runtime"].base
    assert stages["runtime"].base.startswith("python:3.11-slim")


def test_the_environment_comes_from_the_lock_without_dev_tools_or_editable_installs() -> None:
    syncs = [run for run in dockerfile_stages()["build"].all("RUN") if "uv sync" in run]
    assert len(syncs) == 2, "dependencies first (cached layer), then our packages"
    for sync in syncs:
        assert "--frozen" in sync
        assert "--no-dev" in sync
        assert "--all-packages" in sync
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1]


def test_the_runtime_stage_has_the_environment_and_nothing_to_build_with() -> None:
    runtime = dockerfile_stages()["runtime"]
    assert runtime.all("COPY") == ["--from=build /opt/shop/venv /opt/shop/venv"]
    for run in runtime.all("RUN"):
        for tool in ("apt-get", "gcc", "build-essential", "pip ", "uv ", "curl"):
            assert tool not in run
    environment = dockerfile_environment()
    assert environment["PATH"].startswith("/opt/shop/venv/bin:")
    assert environment["APP_ENV"] == "production"


def test_it_runs_as_a_non_root_user() -> None:
    user = dockerfile_stages()["runtime"].one("USER")
    uid, _, gid = user.partition(":")
    assert int(uid) >= 1000
    assert int(gid) >= 1000


def test_the_healthcheck_asks_for_liveness_with_python() -> None:
    check = dockerfile_stages()["runtime"].one("HEALTHCHECK")
    assert '"python"' in check
    assert "http://127.0.0.1:8000/api/health/" in check


def test_the_default_command_is_the_api() -> None:
    assert dockerfile_command() == API_COMMAND
    assert dockerfile_stages()["runtime"].one("EXPOSE") == "8000"


def test_the_build_context_leaves_out_local_state_and_secrets() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "var", "tests", ".env", "**/*.pem"):
        assert entry in ignored
