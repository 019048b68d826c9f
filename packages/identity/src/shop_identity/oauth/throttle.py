"""Sign-in throttling: too many failed sign-ins for one account or from one address lock it out a while.

An in-process store: each replica counts on its own, so the effective limit is the limit times the
number of replicas. Issue 7 moves rate limits to Litestar's middleware on Redis; this one then moves
to the same store.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ("SignInThrottle",)


@dataclass
class SignInThrottle:
    """Sliding window of failures per key (`account:<username>` or `address:<ip>`).

    After `max_failures` failures within `window_seconds`, the key is refused until the oldest of them
    leaves the window. A successful sign-in forgets the account's failures (not the address's).
    """

    max_failures_per_account: int = 5
    max_failures_per_address: int = 20
    window_seconds: float = 15 * 60
    max_keys: int = 100_000
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        return f"account:{username.strip().lower()}", f"address:{address}"

    def retry_after(self, username: str, address: str) -> int | None:
        """Seconds until a sign-in may be tried again, or None when it may be tried now."""
        now = time.monotonic()
        waits = []
        for key, limit in zip(
            self.keys(username, address), (self.max_failures_per_account, self.max_failures_per_address), strict=True
        ):
            failures = self._recent(key, now)
            if len(failures) >= limit:
                waits.append(failures[-limit] + self.window_seconds - now)
        return max(1, int(max(waits)) + 1) if waits else None

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        if len(self._failures) >= self.max_keys:
            self._prune(now)
        for key in self.keys(username, address):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str, address: str) -> None:
        self._failures.pop(self.keys(username, address)[0], None)

    def clear(self) -> None:
        self._failures.clear()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)
        if len(self._failures) >= self.max_keys:  # pragma: no cover - a flood of distinct keys
            self._failures.clear()
