"""Garbage collection without long pauses in the processes that serve and work for the server's whole life.

CPython's full (generation 2) collection walks every object that survived the younger ones. A serving process
holds some 170,000-240,000 objects from its imports and its app (SQLAlchemy's metadata and compiled statements,
Litestar's routes, jinja2's templates), all alive until the process ends: each full collection walked them all and
paused every request in flight in that process: 450-630 ms of wall time each under orders and product pages on
a loaded 2-core machine (measured with `gc.callbacks`), and 12-100 ms once the survivors were frozen (decision 192).

`freeze_survivors()` collects once and then moves every object alive at that point into the permanent generation
(`gc.freeze`), which no collection walks again: later full collections look only at what requests created since.
Cyclic garbage made by requests is still collected. Called once a process has started, never in tests (whose
processes build and drop many apps: frozen objects are never freed).
"""

from __future__ import annotations

import gc

__all__ = ("freeze_survivors",)


def freeze_survivors() -> None:
    """Collect what startup left behind, then keep every survivor out of later collections."""
    gc.collect()
    gc.freeze()
