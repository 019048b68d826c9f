"""A serving process keeps what it started with out of garbage collection (decision 192)."""

from __future__ import annotations

import gc
from pathlib import Path

from app import asgi
from app.gc_tuning import freeze_survivors


def test_a_serving_process_freezes_its_survivors_once_started(cli_env: Path) -> None:
    app = asgi.create_app()
    assert app.on_startup[-1] is freeze_survivors, "after every other startup hook, so their objects are frozen too"
    survivor: list[object] = [app]
    assert gc.is_tracked(survivor)
    assert any(o is survivor for o in gc.get_objects())
    try:
        freeze_survivors()
        assert gc.get_freeze_count() > 1000
        assert not any(o is survivor for o in gc.get_objects()), "a frozen object is never walked again"
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
