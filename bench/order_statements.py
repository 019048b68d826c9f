"""SQL statements and in-process time of one `POST /api/orders/`, by number of order lines (no HTTP server).

    .venv/bin/python bench/order_statements.py              # 1, 5 and 20 lines
    .venv/bin/python bench/order_statements.py --lines 1 20 --repeat 200 --show

Throwaway SQLite database (`shop migrate`, `shop seed-demo`, 10 more products so there are 20), the composed
app in a Litestar TestClient without Redis (so no worker: the outbox is written but not relayed), the demo
customer's bearer token. Statements are counted with a `before_cursor_execute` listener on every engine of
the process (the app's and the SQLite writer thread's of `run_unit_of_work`), for the whole request
(authentication included; `BEGIN IMMEDIATE`/`COMMIT` go to the driver directly and are not counted).
Time is the median wall clock of sequential requests.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / ".venv" / "bin" / "shop"
CUSTOMER = {"Authorization": "Bearer demo-customer-token-999"}
PRODUCTS = 20


def place(client: Any, body: dict[str, Any]) -> None:
    response = client.post("/api/orders/", json=body, headers=CUSTOMER)
    if response.status_code != 201:
        raise SystemExit(f"POST /api/orders/ answered {response.status_code}: {response.text}")


@contextmanager
def counted(app: Any) -> Iterator[list[str]]:
    from sqlalchemy import Engine, event

    del app  # the app runs in this process: listening on the Engine class sees all of its engines
    engine = Engine
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def prepare(var_dir: Path) -> None:
    env = {**os.environ, "APP_ENV": "development", "VAR_DIR": str(var_dir), "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    for command in ("migrate", "seed-demo"):
        subprocess.run([str(SHOP), command], env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    with sqlite3.connect(var_dir / "shop.sqlite3") as db:
        have = db.execute("SELECT count(*) FROM catalog_product").fetchone()[0]
        for n in range(have, PRODUCTS):
            db.execute(
                "INSERT INTO catalog_product (name, description, price, sku, stock_quantity, is_active, created_at,"
                " updated_at) SELECT name || ' #' || ?, description, price, 'BENCH-' || ?, 0, 1, created_at,"
                " updated_at FROM catalog_product WHERE id = 1",
                (n, n),
            )
        db.execute("UPDATE catalog_product SET stock_quantity = 1000000, is_active = 1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, nargs="+", default=[1, 5, 20], help=f"at most {PRODUCTS}")
    parser.add_argument("--repeat", type=int, default=100, help="timed requests per line count")
    parser.add_argument("--show", action="store_true", help="print the statements of each order")
    args = parser.parse_args()
    if max(args.lines) > PRODUCTS:
        parser.error(f"--lines: at most {PRODUCTS}")

    with tempfile.TemporaryDirectory(prefix="shop-order-statements.") as tmp:
        var_dir = Path(tmp)
        prepare(var_dir)
        os.environ.update(APP_ENV="development", VAR_DIR=str(var_dir), LOG_LEVEL="WARNING")
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
        from litestar.testing import TestClient

        from app.main import create_app
        from app.settings import Settings

        app = create_app(Settings.from_env())
        counts: dict[int, int] = {}
        with TestClient(app) as client:
            for lines in args.lines:
                body = {"items": [{"product_id": pid, "quantity": 1} for pid in range(1, lines + 1)]}
                place(client, body)  # warm the statement caches
                with counted(app) as executed:
                    place(client, body)
                counts[lines] = len(executed)
                timings = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    place(client, body)
                    timings.append((time.perf_counter() - started) * 1000)
                print(
                    f"{lines:>2} line(s): {len(executed)} SQL statements per order; in-process "
                    f"{statistics.median(timings):.2f} ms median over {args.repeat} sequential orders"
                )
                if args.show:
                    for statement in executed:
                        print(f"    {statement[:160]}")
        same = len(set(counts.values())) == 1
        print(f"statements independent of the number of lines: {'yes' if same else 'NO'} {counts}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
