"""Locate the PostgreSQL server binaries (initdb, pg_ctl); exit 1 when they are not installed.

Used by `make postgres-binaries` (to install them only where missing) and by the test session.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path


def find_postgres_bindir() -> Path | None:
    explicit = os.environ.get("PG_BINDIR")
    candidates = [Path(explicit)] if explicit else []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


if __name__ == "__main__":
    found = find_postgres_bindir()
    if found is None:
        sys.exit(1)
    print(found)
