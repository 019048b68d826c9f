"""Generate a deterministic benchmark catalog straight into the database (no HTTP, no ORM).

    .venv/bin/python bench/make_catalog.py --url sqlite:///var/shop.sqlite3 --products 2000 --categories 30
    .venv/bin/python bench/make_catalog.py --url postgresql+asyncpg://shop@127.0.0.1:5432/shop \
        --products 1000000 --categories 10000 --depth 4

Run `shop migrate` first. By default the catalog tables are emptied first (`--append` keeps what is
there), so the catalog holds exactly N products and M categories.

The tree: `--depth` levels with the same branching factor b (smallest b with b + b^2 + ... >= M); the
last level is cut to reach M and spread evenly over its parents. Every product is linked to one leaf
category; 10 % get a second, random category (exercises DISTINCT); 95 % are active. Prices 1.00-999.99.
Rows are written like the app writes them: SQLite `DateTimeUTC` as naive-UTC text
`YYYY-MM-DD HH:MM:SS.ffffff`, PostgreSQL through COPY (then the identity sequences are moved past the ids).
Ends with ANALYZE (SQLite) / VACUUM ANALYZE (PostgreSQL), as a long-running database would have had.

Prints one JSON line: counts, a root/leaf category id for the benchmarks, and the seconds taken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

ADJECTIVES = [
    "Red",
    "Blue",
    "Green",
    "Black",
    "White",
    "Silver",
    "Golden",
    "Compact",
    "Portable",
    "Wireless",
    "Smart",
    "Classic",
    "Deluxe",
    "Eco",
    "Ultra",
    "Mini",
    "Pro",
    "Rugged",
    "Vintage",
    "Modern",
    "Organic",
    "Premium",
    "Basic",
    "Heavy",
    "Light",
    "Quiet",
    "Fast",
    "Slim",
    "Large",
    "Small",
]
NOUNS = [
    "Phone",
    "Laptop",
    "Tablet",
    "Camera",
    "Speaker",
    "Headset",
    "Charger",
    "Cable",
    "Monitor",
    "Keyboard",
    "Mouse",
    "Router",
    "Lamp",
    "Kettle",
    "Blender",
    "Toaster",
    "Skillet",
    "Pan",
    "Knife",
    "Mug",
    "Chair",
    "Desk",
    "Shelf",
    "Jacket",
    "Shoe",
    "Backpack",
    "Watch",
    "Bottle",
    "Tent",
    "Novel",
    "Cookbook",
    "Puzzle",
]
CATEGORY_WORDS = [
    "Electronics",
    "Home",
    "Kitchen",
    "Garden",
    "Sports",
    "Outdoor",
    "Books",
    "Music",
    "Toys",
    "Fashion",
    "Beauty",
    "Health",
    "Office",
    "Auto",
    "Pets",
    "Baby",
    "Tools",
    "Games",
    "Travel",
    "Crafts",
    "Audio",
    "Video",
    "Computers",
    "Phones",
    "Cameras",
    "Furniture",
    "Lighting",
    "Storage",
    "Cleaning",
    "Fitness",
]
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class Catalog:
    categories: list[tuple[int, str, int | None, int]] = field(default_factory=list)  # id, name, parent, depth
    leaves: list[int] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)


def branching(total: int, depth: int) -> int:
    b = 1
    while sum(b**level for level in range(1, depth + 1)) < total:
        b += 1
    return b


def build_tree(total: int, depth: int, first_id: int, rng: random.Random) -> Catalog:
    b = branching(total, depth)
    catalog = Catalog()
    next_id = first_id
    previous: list[int] = []
    for level in range(depth):
        remaining = total - len(catalog.categories)
        if remaining <= 0:
            break
        wanted = b if level == 0 else len(previous) * b
        count = min(wanted, remaining)
        current: list[int] = []
        for i in range(count):
            parent = None if level == 0 else previous[i % len(previous)]  # spread evenly over the parents
            word = CATEGORY_WORDS[rng.randrange(len(CATEGORY_WORDS))]
            catalog.categories.append((next_id, f"{word} {level}-{i}", parent, level))
            current.append(next_id)
            next_id += 1
        previous = current
    parents = {parent for _, _, parent, _ in catalog.categories if parent is not None}
    catalog.leaves = [cid for cid, _, _, _ in catalog.categories if cid not in parents]
    catalog.roots = [cid for cid, _, parent, _ in catalog.categories if parent is None]
    return catalog


def product_rows(count: int, first_id: int, catalog: Catalog, rng: random.Random) -> Any:
    """Yield (id, name, description, price_cents, sku, stock, is_active, created_at, categories) tuples."""
    all_ids = [cid for cid, _, _, _ in catalog.categories]
    leaves = catalog.leaves
    step = timedelta(seconds=max(1, int(3600 * 24 * 365 / max(count, 1))))
    for n in range(count):
        pid = first_id + n
        adjective = ADJECTIVES[rng.randrange(len(ADJECTIVES))]
        noun = NOUNS[rng.randrange(len(NOUNS))]
        name = f"{adjective} {noun} {pid}"
        description = f"A {adjective.lower()} {noun.lower()} for benchmarks, model {pid % 997}."
        cents = rng.randint(100, 99_999)
        stock = rng.randint(0, 100)
        active = rng.random() < 0.95
        created = BASE_TIME + step * n
        cats = [leaves[rng.randrange(len(leaves))]]
        if rng.random() < 0.10:
            extra = all_ids[rng.randrange(len(all_ids))]
            if extra != cats[0]:
                cats.append(extra)
        yield pid, name, description, cents, f"BENCH-{pid:08d}", stock, active, created, cats


def sqlite_path(url: str) -> str:
    for prefix in ("sqlite+aiosqlite:///", "sqlite:///"):
        if url.startswith(prefix):
            return url.removeprefix(prefix)
    raise SystemExit(f"not a SQLite URL: {url}")


def sqlite_text(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def generate_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    db = sqlite3.connect(sqlite_path(args.url), isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-400000")  # 400 MB page cache while loading
    db.execute("PRAGMA temp_store=MEMORY")
    db.execute("BEGIN")
    if not args.append:
        for table in ("catalog_product_category", "catalog_product", "catalog_category"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
    first_category = (db.execute("SELECT coalesce(max(id), 0) FROM catalog_category").fetchone()[0]) + 1
    first_product = (db.execute("SELECT coalesce(max(id), 0) FROM catalog_product").fetchone()[0]) + 1
    rng = random.Random(args.seed)
    catalog = build_tree(args.categories, args.depth, first_category, rng)
    now = sqlite_text(BASE_TIME)
    db.executemany(
        "INSERT INTO catalog_category (id, name, parent_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        [(cid, name, parent, now, now) for cid, name, parent, _ in catalog.categories],
    )
    batch: list[tuple[Any, ...]] = []
    links: list[tuple[int, int]] = []

    def flush() -> None:
        # 1,000 rows a statement, as SQLAlchemy's insertmanyvalues writes the app's bulk upload: the search
        # index's trigger makes FTS5 flush its pending words at the end of each statement (one row a statement
        # took 97 s for 1,000,000 products instead of 22)
        for start in range(0, len(batch), 1000):
            rows = batch[start : start + 1000]
            placeholders = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
            columns = "id, name, description, price, sku, stock_quantity, is_active, created_at, updated_at"
            insert = f"INSERT INTO catalog_product ({columns}) VALUES {placeholders}"  # noqa: S608 - no values
            db.execute(insert, [value for row in rows for value in row])
        db.executemany("INSERT INTO catalog_product_category (product_id, category_id) VALUES (?, ?)", links)
        batch.clear()
        links.clear()

    for pid, name, description, cents, sku, stock, active, created, cats in product_rows(
        args.products, first_product, catalog, rng
    ):
        stamp = sqlite_text(created)
        # Numeric(10, 2) on SQLite: the app binds a float, so do the same (cents / 100 rounds exactly).
        batch.append((pid, name, description, cents / 100, sku, stock, int(active), stamp, stamp))
        links.extend((pid, c) for c in cats)
        if len(batch) >= 50_000:
            flush()
    flush()
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return describe(catalog)


async def generate_postgres(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    dsn = args.url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if not args.append:
                await conn.execute(
                    "TRUNCATE catalog_product_category, catalog_product, catalog_category RESTART IDENTITY CASCADE"
                )
            first_category = await conn.fetchval("SELECT coalesce(max(id), 0) + 1 FROM catalog_category")
            first_product = await conn.fetchval("SELECT coalesce(max(id), 0) + 1 FROM catalog_product")
            rng = random.Random(args.seed)
            catalog = build_tree(args.categories, args.depth, first_category, rng)
            await conn.copy_records_to_table(
                "catalog_category",
                columns=["id", "name", "parent_id", "created_at", "updated_at"],
                records=[(cid, name, parent, BASE_TIME, BASE_TIME) for cid, name, parent, _ in catalog.categories],
            )
            batch: list[tuple[Any, ...]] = []
            links: list[tuple[int, int]] = []

            async def flush() -> None:
                await conn.copy_records_to_table(
                    "catalog_product",
                    columns=[
                        "id",
                        "name",
                        "description",
                        "price",
                        "sku",
                        "stock_quantity",
                        "is_active",
                        "created_at",
                        "updated_at",
                    ],
                    records=batch,
                )
                await conn.copy_records_to_table(
                    "catalog_product_category", columns=["product_id", "category_id"], records=links
                )
                batch.clear()
                links.clear()

            for pid, name, description, cents, sku, stock, active, created, cats in product_rows(
                args.products, first_product, catalog, rng
            ):
                batch.append((pid, name, description, Decimal(cents) / 100, sku, stock, active, created, created))
                links.extend((pid, c) for c in cats)
                if len(batch) >= 50_000:
                    await flush()
            await flush()
            for table in ("catalog_category", "catalog_product"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
                )
        # Outside the transaction: sets the visibility map (index-only scans) and the planner statistics.
        await conn.execute("VACUUM ANALYZE catalog_category, catalog_product, catalog_product_category")
    finally:
        await conn.close()
    return describe(catalog)


def describe(catalog: Catalog) -> dict[str, Any]:
    children: dict[int, int] = {}
    for _, _, parent, _ in catalog.categories:
        if parent is not None:
            children[parent] = children.get(parent, 0) + 1
    depths = [depth for _, _, _, depth in catalog.categories]
    return {
        "categories": len(catalog.categories),
        "depth": max(depths) + 1 if depths else 0,
        "roots": len(catalog.roots),
        "leaves": len(catalog.leaves),
        "root_id": catalog.roots[0],
        "leaf_id": catalog.leaves[len(catalog.leaves) // 2],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--url", required=True, help="sqlite:///path, sqlite+aiosqlite:///path or postgresql+asyncpg://..."
    )
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--categories", type=int, default=30)
    parser.add_argument("--depth", type=int, default=3, help="levels in the tree (3 or 4)")
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--append", action="store_true", help="keep the existing catalog rows")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.url.startswith("sqlite"):
        info = generate_sqlite(args)
    elif args.url.startswith("postgres"):
        info = asyncio.run(generate_postgres(args))
    else:
        raise SystemExit(f"unsupported database URL: {args.url}")
    info.update(products=args.products, seconds=round(time.perf_counter() - started, 2))
    print(json.dumps(info), flush=True)
    return info


if __name__ == "__main__":
    main(sys.argv[1:])
