"""Each package is a wheel a sibling service can install on its own: built with `uv build`, installed into a
fresh virtual environment with only its declared dependencies, and serving its endpoints from the
examples in `examples/` (which docs/reuse.md walks through)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.uv import uv_command

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PACKAGES = ("kernel", "catalog", "identity", "ordering", "notify")


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    completed = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, f"{command}: {completed.stdout}\n{completed.stderr}"
    return completed.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dist = tmp_path_factory.mktemp("dist")
    _run(*uv_command(), "build", "--all-packages", "--wheel", "--out-dir", dist, cwd=ROOT)
    built = {wheel.name.split("-")[0].removeprefix("shop_"): wheel for wheel in dist.glob("shop_*.whl")}
    assert set(PACKAGES) <= set(built)
    constraints = dist / "constraints.txt"  # the locked versions of everything else
    export = ("export", "--frozen", "--no-hashes", "--all-packages", "--no-emit-workspace", "--no-dev")
    constraints.write_text(_run(*uv_command(), *export, cwd=ROOT))
    built["constraints"] = constraints
    return built


def _fresh_environment(tmp_path: Path, wheels: dict[str, Path], *packages: str) -> Path:
    venv = tmp_path / "venv"
    _run(*uv_command(), "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(*uv_command(), "pip", "install", "--quiet", "--python", python, "-c", wheels["constraints"],
         *(wheels[name] for name in packages), "aiosqlite", "httpx")  # fmt: skip
    return python


def _installed_shop_packages(python: Path) -> set[str]:
    names = "import importlib.metadata as m, json; print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"
    return {name for name in json.loads(_run(python, "-c", names)) if name.startswith("shop-")}


def _check(python: Path, example: str, cwd: Path) -> dict[str, object]:
    script = cwd / example
    shutil.copy(EXAMPLES / example, script)  # run outside the repository: only the venv's packages are importable
    return dict(json.loads(_run(python, script, "--check", cwd=cwd).strip().splitlines()[-1]))


def test_catalog_installs_and_serves_alone(tmp_path: Path, wheels: dict[str, Path]) -> None:
    python = _fresh_environment(tmp_path, wheels, "kernel", "catalog")
    assert _installed_shop_packages(python) == {"shop-kernel", "shop-catalog"}
    result = _check(python, "catalog_service.py", tmp_path)
    assert result["anonymous_write"] == 401
    assert result["products"] == ["BK-1"]
    assert result["average_price"] == {
        "category": "Books",
        "category_path": "Books",
        "average_price": 45.0,
        "total_products": 1,
    }


def test_identity_installs_and_serves_alone(tmp_path: Path, wheels: dict[str, Path]) -> None:
    python = _fresh_environment(tmp_path, wheels, "kernel", "identity")
    assert _installed_shop_packages(python) == {"shop-kernel", "shop-identity"}
    assert _check(python, "identity_service.py", tmp_path) == {
        "registered": 201,
        "profile": 200,
        "phone_number": "+254712345678",
        "anonymous_profile": 401,
    }


def test_ordering_installs_with_its_declared_dependencies(tmp_path: Path, wheels: dict[str, Path]) -> None:
    python = _fresh_environment(tmp_path, wheels, "kernel", "catalog", "identity", "ordering")
    assert _installed_shop_packages(python) == {"shop-kernel", "shop-catalog", "shop-identity", "shop-ordering"}
    assert _check(python, "ordering_service.py", tmp_path) == {
        "placed": 201,
        "total_amount": "25.00",
        "out_of_stock": 400,
        "listed": 1,
    }


def test_notify_installs_and_serves_alone(tmp_path: Path, wheels: dict[str, Path]) -> None:
    python = _fresh_environment(tmp_path, wheels, "kernel", "catalog", "identity", "ordering", "notify")
    assert "shop-app" not in _installed_shop_packages(python)
    assert _check(python, "notify_service.py", tmp_path) == {"log": 200, "entries": 0, "anonymous": 401}
