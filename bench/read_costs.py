"""Per-call cost of the catalog read services, in-process, without HTTP: milliseconds and SQL statements.

    .venv/bin/python bench/read_costs.py                       # temp SQLite, 2,000 products / 30 categories
    .venv/bin/python bench/read_costs.py --products 1000000 --categories 10000 --depth 4 --calls 20
    .venv/bin/python bench/read_costs.py --url sqlite:////path/to/shop.sqlite3 --root 1 --leaf 22   # existing DB

Each service call runs in its own session, sequentially (no concurrency), the way one request would:
the figure is the CPU + database time one request spends below the HTTP layer, so the ceiling of one
uvicorn process is roughly 1000 / ms req/s. A `SELECT 1` through a fresh session is the floor of any
request that touches the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import make_alchemy_config  # noqa: E402
from app.settings import Settings  # noqa: E402
from shop_catalog.services import CategoryService, ProductFilters, ProductService  # noqa: E402
from shop_kernel import PageRequest, Unit  # noqa: E402


async def measure(url: str, root: int, leaf: int, calls: int) -> list[dict[str, Any]]:
    settings = Settings(database_url=url, var_dir=Path(tempfile.gettempdir()))
    config = make_alchemy_config(settings)
    engine = config.get_engine()
    maker = config.create_session_maker()
    statements = 0

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    page20 = PageRequest(page=1, page_size=20)
    page50 = PageRequest(page=1, page_size=50)
    cases: dict[str, Any] = {
        "SELECT 1 (floor)": lambda s: s.execute(text("SELECT 1")),
        "product list p1/20": lambda s: ProductService(Unit(s)).page(ProductFilters(), page20, staff=False),
        "product list category=root /50": lambda s: ProductService(Unit(s)).page(
            ProductFilters(category=root), page50, staff=False
        ),
        "product list category=leaf /50": lambda s: ProductService(Unit(s)).page(
            ProductFilters(category=leaf), page50, staff=False
        ),
        "product list search /20": lambda s: ProductService(Unit(s)).page(
            ProductFilters(search="blender"), page20, staff=False
        ),
        "category list p1/10": lambda s: CategoryService(Unit(s)).page(PageRequest(page=1, page_size=10)),
        "average price root": lambda s: CategoryService(Unit(s)).average_price(root),
        "average price leaf": lambda s: CategoryService(Unit(s)).average_price(leaf),
    }
    results = []
    try:
        for name, call in cases.items():
            async with maker() as session:  # warm-up: statement cache, page cache
                await call(session)
            timings = []
            statements = 0
            for _ in range(calls):
                started = time.perf_counter()
                async with maker() as session:
                    await call(session)
                timings.append((time.perf_counter() - started) * 1000)
            results.append(
                {
                    "case": name,
                    "median_ms": round(statistics.median(timings), 3),
                    "max_ms": round(max(timings), 3),
                    "statements": statements / calls,
                }
            )
            print(
                f"{name:<34} median {results[-1]['median_ms']:9.3f} ms  max {results[-1]['max_ms']:9.3f} ms"
                f"  {results[-1]['statements']:.0f} SQL statements",
                flush=True,
            )
    finally:
        await engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an existing, populated database (sqlite+aiosqlite:/// or postgresql+asyncpg://)")
    parser.add_argument("--root", type=int, default=None)
    parser.add_argument("--leaf", type=int, default=None)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--categories", type=int, default=30)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    if args.url:
        if args.root is None or args.leaf is None:
            raise SystemExit("--url needs --root and --leaf")
        url = args.url.replace("sqlite:///", "sqlite+aiosqlite:///", 1) if args.url.startswith("sqlite:") else args.url
        asyncio.run(measure(url, args.root, args.leaf, args.calls))
        return
    with tempfile.TemporaryDirectory(prefix="shop-costs-") as var_dir:
        env = {"APP_ENV": "development", "VAR_DIR": var_dir, "PATH": "/usr/bin:/bin"}
        subprocess.run([str(ROOT / ".venv/bin/shop"), "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
        made = subprocess.run(  # noqa: S603
            [
                sys.executable,
                str(ROOT / "bench/make_catalog.py"),
                "--url",
                f"sqlite:///{var_dir}/shop.sqlite3",
                "--products",
                str(args.products),
                "--categories",
                str(args.categories),
                "--depth",
                str(args.depth),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        info = json.loads(made.stdout)
        print(f"catalog: {made.stdout.strip()}")
        asyncio.run(
            measure(f"sqlite+aiosqlite:///{var_dir}/shop.sqlite3", info["root_id"], info["leaf_id"], args.calls)
        )


if __name__ == "__main__":
    main()
