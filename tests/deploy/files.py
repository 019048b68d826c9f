"""Readers for the deployment files: the Dockerfile, deploy/docker-compose.yml and the manifests in deploy/k8s."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for name, argument in self.instructions if name == keyword]

    def one(self, keyword: str) -> str:
        [argument] = self.all(keyword)
        return argument


@cache
def dockerfile_stages() -> dict[str, Stage]:
    """The stages of the Dockerfile by name, with their instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    arguments: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        keyword, argument = keyword.upper(), " ".join(argument.split())
        if keyword == "ARG" and stage is None:
            name, _, default = argument.partition("=")
            arguments[name] = default
        elif keyword == "FROM":
            image, _, name = argument.partition(" AS ")
            image = re.sub(r"\$\{(\w+)\}", lambda match: arguments[match.group(1)], image)
            stage = stages[name] = Stage(name=name, base=image)
        elif stage is not None:
            stage.instructions.append((keyword, argument))
    return stages


def dockerfile_command() -> list[str]:
    return list(json.loads(dockerfile_stages()["runtime"].one("CMD")))


def dockerfile_environment() -> dict[str, str]:
    """What the runtime stage's ENV instructions set (values as written, `${PATH}` unexpanded)."""
    environment: dict[str, str] = {}
    for argument in dockerfile_stages()["runtime"].all("ENV"):
        for pair in shlex.split(argument):
            name, _, value = pair.partition("=")
            environment[name] = value
    return environment


@cache
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def manifest_files() -> list[Path]:
    return sorted(path for path in K8S.rglob("*.yaml") if path.name != "kustomization.yaml")


@cache
def manifests() -> list[dict[str, Any]]:
    """Every Kubernetes object in deploy/k8s, each with the file it came from under `_file`."""
    objects = []
    for path in manifest_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                objects.append({**document, "_file": path.relative_to(K8S).as_posix()})
    return objects


def manifest(kind: str, name: str) -> dict[str, Any]:
    [found] = [item for item in manifests() if item["kind"] == kind and item["metadata"]["name"] == name]
    return found


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"]["spec"])


def container(workload: dict[str, Any]) -> dict[str, Any]:
    [only] = pod_spec(workload)["containers"]
    return dict(only)
