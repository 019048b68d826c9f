"""The floor of bench/floor.py: a bare Litestar app with one JSON route answering a ~1 kB constant.

Served by the same server command and process count as the API, it measures what the server, the framework
and the loopback cost on this machine in this run, so each endpoint is stated as a share of it.
"""

from __future__ import annotations

from litestar import Litestar, get

ITEM = {"id": 1, "name": "Red Phone 15", "description": "A bench item " * 4, "price": "999.99", "stock_quantity": 5}
BODY = {"count": 6, "next": None, "previous": None, "results": [dict(ITEM, id=n) for n in range(1, 7)]}


@get("/floor", sync_to_thread=False)
def floor() -> dict[str, object]:
    return BODY


def create_app() -> Litestar:
    return Litestar(route_handlers=[floor])
