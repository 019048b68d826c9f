"""A throwaway PostgreSQL server for the test session, started from the server binaries (no Docker).

PostgreSQL refuses to run as root, so under root (CI containers) it runs as the `postgres` system user.
Set TEST_POSTGRES_URL to use an existing server instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.find_postgres import find_postgres_bindir
from tests.support.live import free_port


@dataclass
class PostgresServer:
    bindir: Path
    base: Path
    port: int
    run_as: str | None

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://shop@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "shop", "--auth=trust", "-E", "UTF8")
        self.start_again()

    def crash(self) -> None:
        """Stop the server the hard way (`-m immediate`: no checkpoint, connections cut), keeping its data."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def start_again(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            + os.environ.get("PG_EXTRA_OPTIONS", "")
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            options,
            "-l",
            str(self.base / "log"),
            "-w",
            "start",
        )

    def sql(self, *statements: str, database: str = "postgres") -> None:
        """Each statement in its own transaction (ALTER SYSTEM refuses to run inside one)."""
        commands = [arg for statement in statements for arg in ("-c", statement)]
        self._run(
            str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "shop", "-d", database, *commands
        )

    def create_database(self, name: str) -> str:
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "shop", name)
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def start_postgres() -> PostgresServer:
    bindir = find_postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found; run `make postgres-binaries` or set PG_BINDIR")
    base = Path(tempfile.mkdtemp(prefix="shop-pg-"))
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        entry = pwd.getpwnam(run_as)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(bindir=bindir, base=base, port=free_port(), run_as=run_as)
    server.start()
    return server
