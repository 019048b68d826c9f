"""A loopback TCP front for a unix-socket Redis, to break connections the way a Redis restart does over TCP."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path


def _shut(sock: socket.socket) -> None:
    """Close, waking a thread blocked reading it (close alone does not on Linux)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class _Link:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.dead = False


class StaleConnectionProxy:
    """Forwards 127.0.0.1:`port` to the Redis at `unix_socket`.

    `kill_connections()` leaves every open connection dead without telling the client, as when Redis was
    replaced behind a Service address: nothing shows until the client's next command, which finds the
    connection closed ("Connection closed by server"). New connections work.
    """

    def __init__(self, unix_socket: Path) -> None:
        self.unix_socket = unix_socket
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.links: list[_Link] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill_connections(self) -> None:
        for link in self.links:
            link.dead = True
            _shut(link.upstream)

    def close(self) -> None:
        _shut(self.listener)
        self.kill_connections()
        for link in self.links:
            _shut(link.client)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(str(self.unix_socket))
            link = _Link(client, upstream)
            self.links.append(link)
            threading.Thread(target=self._to_redis, args=(link,), daemon=True).start()
            threading.Thread(target=self._to_client, args=(link,), daemon=True).start()

    @staticmethod
    def _to_redis(link: _Link) -> None:
        with contextlib.suppress(OSError):
            while data := link.client.recv(65536):
                if link.dead:
                    break
                link.upstream.sendall(data)
        _shut(link.client)  # a dead link's client learns of it only now, after it sent a command

    @staticmethod
    def _to_client(link: _Link) -> None:
        with contextlib.suppress(OSError):
            while (data := link.upstream.recv(65536)) and not link.dead:
                link.client.sendall(data)
        if not link.dead:
            _shut(link.client)
