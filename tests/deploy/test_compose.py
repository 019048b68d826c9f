"""deploy/docker-compose.yml: one image in three roles, started in the right order.

Its schema is checked by `make deploy-lint` (check-jsonschema's bundled compose-spec schema).
"""

from __future__ import annotations

from typing import Any

from tests.deploy.files import compose, dockerfile_command

ROLES = ("api", "worker", "migrate")


def services() -> dict[str, Any]:
    return dict(compose()["services"])


def test_the_services() -> None:
    assert set(services()) == {"postgres", "redis", "migrate", "api", "worker"}


def test_api_worker_and_migrate_run_the_same_image_built_from_the_dockerfile() -> None:
    roles = [services()[role] for role in ROLES]
    assert len({role["image"] for role in roles}) == 1
    for role in roles:
        assert role["build"] == {"context": "..", "dockerfile": "Dockerfile"}


def test_each_role_is_chosen_by_its_command() -> None:
    assert services()["api"]["command"] == dockerfile_command()
    assert services()["worker"]["command"] == ["shop", "worker"]
    assert services()["migrate"]["command"] == ["shop", "migrate"]


def test_migrations_run_once_before_the_api_and_the_worker_start() -> None:
    migrate = services()["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for role in ("api", "worker"):
        assert services()[role]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
        assert "migrate" not in services()[role]["command"]


def test_health_checks_gate_the_dependencies() -> None:
    assert "pg_isready" in services()["postgres"]["healthcheck"]["test"][1]
    assert services()["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    # the image's HEALTHCHECK probes the api's HTTP port, which the other roles do not open
    assert "healthcheck" not in services()["api"]
    assert services()["worker"]["healthcheck"] == {"disable": True}
    assert services()["migrate"]["healthcheck"] == {"disable": True}


def test_every_role_gets_the_same_production_environment_and_no_secret_is_written_down() -> None:
    environments = [services()[role]["environment"] for role in ROLES]
    assert all(environment == environments[0] for environment in environments)
    environment = environments[0]
    assert environment["APP_ENV"] == "production"
    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]
    assert services()["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
