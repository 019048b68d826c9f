"""Child processes of `shop serve` that must not outlive it, however it dies."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

__all__ = ("SUPERVISED", "die_with_parent")

PR_SET_PDEATHSIG = 1
SUPERVISED = "SHOP_SERVE_SUPERVISED"
"""Set by `shop serve` for the serving processes it starts: they stop when it dies."""


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Linux: this process gets `sig` when its parent dies, even by SIGKILL (a `finally` never runs then).

    Called in the child (as `preexec_fn`, or first thing in a spawned process). A parent already gone before
    the call cannot signal any more: the child stops at once instead.
    """
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    if parent == 1:  # pragma: no cover - reparented to init before we could ask
        os.kill(os.getpid(), sig)
