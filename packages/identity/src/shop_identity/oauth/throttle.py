"""Sign-in throttling: too many failed sign-ins for one account or from one address lock it out a while.

The counts live in a `FailureCounter`. The default keeps them in this process, so each replica counts on
its own; a host app with several replicas gives the plugin a shared one (the composed app passes one
backed by its Redis), so the limits hold for the deployment, not per process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ("FailureCounter", "MemoryFailureCounter", "SignInThrottle")


class FailureCounter(Protocol):
    """Counts failures per key in fixed windows: the first failure opens a window of `window_seconds`."""

    async def add(self, key: str, window_seconds: int) -> None: ...

    async def get(self, key: str) -> tuple[int, int]:
        """Failures in the key's current window, and seconds until it ends (0, 0 when there is none)."""
        ...

    async def forget(self, key: str) -> None: ...

    async def clear(self) -> None: ...


@dataclass
class MemoryFailureCounter:
    """Fixed windows in this process only."""

    max_keys: int = 100_000
    _windows: dict[str, tuple[int, float]] = field(default_factory=dict)

    async def add(self, key: str, window_seconds: int) -> None:
        now = time.monotonic()
        if len(self._windows) >= self.max_keys:
            self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
            if len(self._windows) >= self.max_keys:  # pragma: no cover - a flood of distinct keys
                self._windows.clear()
        count, ends = self._windows.get(key, (0, now + window_seconds))
        if ends <= now:
            count, ends = 0, now + window_seconds
        self._windows[key] = (count + 1, ends)

    async def get(self, key: str) -> tuple[int, int]:
        count, ends = self._windows.get(key, (0, 0.0))
        left = ends - time.monotonic()
        return (count, max(1, int(left) + 1)) if left > 0 else (0, 0)

    async def forget(self, key: str) -> None:
        self._windows.pop(key, None)

    async def clear(self) -> None:
        self._windows.clear()


@dataclass
class SignInThrottle:
    """Failures per account (`account:<username>`) and per address (`address:<ip>`).

    After `max_failures` failures within a window of `window_seconds`, the key is refused until the window
    ends. A successful sign-in forgets the account's failures (not the address's).
    """

    max_failures_per_account: int = 5
    max_failures_per_address: int = 20
    window_seconds: float = 15 * 60
    counter: FailureCounter = field(default_factory=MemoryFailureCounter)

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        return f"account:{username.strip().lower()}", f"address:{address}"

    async def retry_after(self, username: str, address: str) -> int | None:
        """Seconds until a sign-in may be tried again, or None when it may be tried now."""
        waits = []
        limits = (self.max_failures_per_account, self.max_failures_per_address)
        for key, limit in zip(self.keys(username, address), limits, strict=True):
            count, left = await self.counter.get(key)
            if count >= limit:
                waits.append(left)
        return max(1, *waits) if waits else None

    async def failed(self, username: str, address: str) -> None:
        for key in self.keys(username, address):
            await self.counter.add(key, int(self.window_seconds))

    async def succeeded(self, username: str, address: str) -> None:
        await self.counter.forget(self.keys(username, address)[0])

    async def clear(self) -> None:
        await self.counter.clear()
