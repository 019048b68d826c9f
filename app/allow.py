"""`Allow` on OPTIONS lists every method of the path.

Litestar 2 gives each route an OPTIONS handler whose `Allow` is the methods of the route that created it. A
controller registers its handlers one by one, so the path's first handler creates the OPTIONS handler and the later
ones (another method on the same path) join a new route that keeps that handler: `OPTIONS /api/products` answered
`Allow: GET, OPTIONS` or `POST, OPTIONS`, never both (litestar-org/litestar#4169, fixed only in Litestar 3). The 405
answer was right all along: the router builds it from the final route.

`complete_allow_headers` points each generated OPTIONS handler at the route that serves it, once the app is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.routes import HTTPRoute

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ("complete_allow_headers",)

_GENERATED = "options_handler"
"""The name of the function `HTTPRoute.create_options_handler` makes; a handler of ours never has it."""


def complete_allow_headers(app: Litestar) -> None:
    """Make every generated OPTIONS handler answer the methods of the final route for its path."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or "OPTIONS" not in route.route_handler_map:
            continue
        handler = route.route_handler_map["OPTIONS"][0]
        function = handler.fn
        code = getattr(function, "__code__", None)
        if getattr(function, "__name__", "") != _GENERATED or code is None or "self" not in code.co_freevars:
            continue
        cell = function.__closure__[code.co_freevars.index("self")]  # type: ignore[index]
        if isinstance(cell.cell_contents, HTTPRoute):
            cell.cell_contents = route
