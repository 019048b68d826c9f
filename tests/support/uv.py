"""How tests call uv: as `make test` runs them (`uv run` exports UV), else from PATH, else the copy that
`make bootstrap` installs for the system Python."""

from __future__ import annotations

import os
import shutil


def uv_command() -> list[str]:
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else [shutil.which("python3") or "python3", "-m", "uv"]
