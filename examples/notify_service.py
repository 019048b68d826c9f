"""A sibling service that sends order notifications (SMS through Africa's Talking, e-mail over SMTP) and
serves the notification log to staff. The relay and the delivery jobs run on SAQ when REDIS_URL is set.

    pip install shop-notify aiosqlite uvicorn         # + shop-kernel and shop-ordering (its event contracts)
    REDIS_URL=redis://localhost:6379/0 uvicorn notify_service:app

`python notify_service.py --check` runs a smoke test against the app in-process (no Redis needed).
"""

from __future__ import annotations

import json
import os
import sys

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar

from shop_kernel import BearerTokenMiddleware, Principal
from shop_notify import NotifyPlugin, NotifySettings

alchemy = SQLAlchemyAsyncConfig(
    connection_string=os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///notify.sqlite3"), create_all=True
)
notify = NotifyPlugin(
    NotifySettings(sms_backend="console", email_backend="console", admin_email="ops@example.com"),
    session_maker=alchemy.create_session_maker(),
)
STAFF = Principal(user_id=0, username="ops", scopes=frozenset({"read", "write"}), is_staff=True)


async def resolve(token: str) -> Principal | None:
    return STAFF if token == os.environ.get("NOTIFY_STAFF_TOKEN", "change-me") else None


plugins: list[object] = [SQLAlchemyPlugin(alchemy), notify]
if redis_url := os.environ.get("REDIS_URL"):
    from litestar_saq import SAQConfig, SAQPlugin

    plugins.append(SAQPlugin(SAQConfig(queue_configs=[notify.queue_config(redis_url, in_process=True)])))
app = Litestar(plugins=plugins, middleware=[BearerTokenMiddleware(resolve)])  # type: ignore[arg-type]


def check() -> dict[str, object]:
    from litestar.testing import TestClient

    with TestClient(app) as client:
        log = client.get("/api/notifications/", headers={"Authorization": "Bearer change-me"})
        return {"log": log.status_code, "entries": len(log.json()["results"]),
                "anonymous": client.get("/api/notifications/").status_code}  # fmt: skip


if __name__ == "__main__" and "--check" in sys.argv:
    sys.stdout.write(json.dumps(check()) + "\n")
