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
    """Counts attempts per key in fixed windows: the first one opens a window of `window_seconds`."""

    async def add(self, key: str, window_seconds: int) -> tuple[int, int]:
        """Count one; returns the count in the key's window (this one included) and seconds until it ends."""
        ...

    async def discount(self, key: str) -> None:
        """Take one back (an attempt that turned out to succeed)."""
        ...

    async def forget(self, key: str) -> None: ...

    async def clear(self) -> None: ...


@dataclass
class MemoryFailureCounter:
    """Fixed windows in this process only."""

    max_keys: int = 100_000
    _windows: dict[str, tuple[int, float]] = field(default_factory=dict)

    async def add(self, key: str, window_seconds: int) -> tuple[int, int]:
        now = time.monotonic()
        if len(self._windows) >= self.max_keys:
            self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
            if len(self._windows) >= self.max_keys:  # pragma: no cover - a flood of distinct keys
                self._windows.clear()
        count, ends = self._windows.get(key, (0, now + window_seconds))
        if ends <= now:
            count, ends = 0, now + window_seconds
        self._windows[key] = (count + 1, ends)
        return count + 1, max(1, int(ends - now) + 1)

    async def discount(self, key: str) -> None:
        count, ends = self._windows.get(key, (0, 0.0))
        if count > 0:
            self._windows[key] = (count - 1, ends)

    async def forget(self, key: str) -> None:
        self._windows.pop(key, None)

    async def clear(self) -> None:
        self._windows.clear()


@dataclass
class SignInThrottle:
    """Failed sign-ins per account (`account:<username>`) and per address (`address:<ip>`).

    Every attempt is counted before the password is checked; a successful one is taken back. Past
    `max_failures` within a window of `window_seconds`, the key is refused until the window ends. A
    successful sign-in forgets the account's failures (not the address's).
    """

    max_failures_per_account: int = 5
    max_failures_per_address: int = 20
    window_seconds: float = 15 * 60
    counter: FailureCounter = field(default_factory=MemoryFailureCounter)

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        return f"account:{username.strip().lower()}", f"address:{address}"

    async def attempt(self, username: str, address: str) -> int | None:
        """Count this sign-in attempt against the account and the address before the password is checked, so
        attempts sent at the same moment cannot all slip under the limit; returns the seconds to wait when
        over it (the password is then not checked at all), else None."""
        waits = []
        limits = (self.max_failures_per_account, self.max_failures_per_address)
        for key, limit in zip(self.keys(username, address), limits, strict=True):
            count, left = await self.counter.add(key, int(self.window_seconds))
            if count > limit:
                waits.append(left)
        return max(1, *waits) if waits else None

    async def succeeded(self, username: str, address: str) -> None:
        """The attempt was right: the account's failures are forgotten, and the address gets its attempt back."""
        account, from_address = self.keys(username, address)
        await self.counter.forget(account)
        await self.counter.discount(from_address)

    async def clear(self) -> None:
        await self.counter.clear()
