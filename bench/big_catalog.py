"""Latency of the subtree endpoints on a big catalog: 1,000,000 products, 10,000 categories (depth 4).

    .venv/bin/python bench/big_catalog.py                      # SQLite
    .venv/bin/python bench/big_catalog.py --postgres           # SQLite, then a throwaway PostgreSQL 15
    .venv/bin/python bench/big_catalog.py --products 200000 --categories 2000 --requests 10
    .venv/bin/python bench/big_catalog.py --postgres --keep var/big   # build once, then reuse the databases

Per database: `shop migrate` into an empty database, bench/make_catalog.py (executemany / COPY in large
transactions, then ANALYZE), `shop serve` (one uvicorn process, LOG_LEVEL=WARNING) on a free loopback
port, then for each URL 2 warm-up requests and --requests sequential timed requests (client wall clock,
one keep-alive connection, anonymous). Prints the first warm-up, median / p90 / max in milliseconds, and
a JSON line.

Every product-list request carries a unique `_=<n>` parameter, which the API ignores: each one misses the
2-second response cache and measures the query path (a hit costs about a millisecond whatever the catalog).
Cached counts (decision 98) are kept: the first warm-up of the first URL of a filter shows a count that
missed them.

`--keep DIR` keeps the SQLite file and the PostgreSQL data directory in DIR: the first run builds them
(a few minutes), later runs with the same sizes only run `shop migrate` (new migrations apply to the kept
data) and measure. `--only NAME,...` measures some cases only.

The tree has 10 roots (about 100,000 products under each), 100 + 1,000 inner nodes and 8,890 leaves
(about 110 products each). PostgreSQL runs as the `postgres` user when started by root, with
fsync=off, synchronous_commit=off, shared_buffers=256MB (a benchmark server, not a durable one).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SHOP = str(ROOT / ".venv" / "bin" / "shop")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres(keep: Path | None = None) -> Iterator[str]:
    """A PostgreSQL server on a loopback port; yields an asyncpg URL. Throwaway unless `keep` names a
    directory for its data, which is created on the first run and reused by later ones."""
    bindir = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
    base = keep if keep is not None else Path(tempfile.mkdtemp(prefix="shop-bench-pg-"))
    base.mkdir(parents=True, exist_ok=True)
    prefix: list[str] = []
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(base, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=300)  # noqa: S603

    fresh = not (base / "data" / "PG_VERSION").exists()
    try:
        if fresh:
            run(str(bindir / "initdb"), "-D", str(base / "data"), "-U", "shop", "--auth=trust", "-E", "UTF8")
        options = (
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c shared_buffers=256MB -c max_wal_size=4GB -c max_connections=100"
        )
        run(str(bindir / "pg_ctl"), "-D", str(base / "data"), "-o", options, "-l", str(base / "log"), "-w", "start")
        if fresh:
            run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "shop", "shop")
        yield f"postgresql+asyncpg://shop@127.0.0.1:{port}/shop"
    finally:
        with suppress(subprocess.CalledProcessError):
            run(str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m", "fast", "-w", "stop")
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


@contextmanager
def served(env: dict[str, str], var_dir: str) -> Iterator[str]:
    port = free_port()
    log = Path(var_dir) / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: S603
            [SHOP, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/api/health/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise SystemExit(log.read_text())
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def cases(info: dict[str, Any]) -> list[tuple[str, str]]:
    """Every product-list shape of issue 13 item 4, the earlier subtree cases, and the searches of issue 16."""
    root, leaf = info["root_id"], info["leaf_id"]
    products = "/api/products/?"
    return [
        ("average_price_root", f"/api/products/categories/{root}/average-price/"),
        ("average_price_leaf", f"/api/products/categories/{leaf}/average-price/"),
        ("products_page_1", f"{products}page=1&page_size=20"),
        ("products_page_2", f"{products}page=2&page_size=20"),
        ("products_page_100", f"{products}page=100"),
        ("products_page_1000", f"{products}page=1000"),
        ("products_price", f"{products}ordering=price"),
        ("products_-price", f"{products}ordering=-price"),
        ("products_name", f"{products}ordering=name"),
        ("products_-name", f"{products}ordering=-name"),
        ("products_created_at", f"{products}ordering=created_at"),
        ("products_-created_at", f"{products}ordering=-created_at"),
        ("products_price_range", f"{products}min_price=100&max_price=200"),
        ("products_price_range_by_price", f"{products}min_price=100&max_price=200&ordering=price"),
        ("products_cheap", f"{products}max_price=5"),
        ("products_dear_by_-price", f"{products}min_price=990&ordering=-price"),
        ("products_in_stock", f"{products}in_stock=true"),
        ("products_out_of_stock", f"{products}in_stock=false"),
        ("products_category_root", f"{products}category={root}&page_size=50"),
        ("products_category_root_p2", f"{products}category={root}&page=2"),
        ("products_category_root_p100", f"{products}category={root}&page=100"),
        ("products_category_root_price", f"{products}category={root}&ordering=price"),
        ("products_category_root_-name", f"{products}category={root}&ordering=-name"),
        ("products_category_root_created_at", f"{products}category={root}&ordering=created_at"),
        ("products_category_root_filters", f"{products}category={root}&min_price=100&max_price=200&in_stock=true"),
        ("products_category_root_out_of_stock", f"{products}category={root}&in_stock=false"),
        ("products_category_leaf", f"{products}category={leaf}&page_size=50"),
        ("products_category_leaf_-price", f"{products}category={leaf}&ordering=-price&in_stock=true"),
        ("products_category_leaf_name_range", f"{products}category={leaf}&ordering=name&min_price=100"),
        ("category_list", "/api/products/categories/"),
        ("products_search", f"{products}page=1&page_size=20&search=blender"),
        ("products_search_p2", f"{products}page=2&page_size=20&search=blender"),
        ("products_search_prefix", f"{products}page=1&page_size=20&search=blen"),
        ("products_search_two_words_root", f"{products}search=red+blender&category={root}&min_price=100"),
        ("products_search_typo", f"{products}page=1&page_size=20&search=blendr"),
        ("products_search_by_price", f"{products}page=1&page_size=20&search=blender&ordering=price"),
        ("products_search_sku", f"{products}search=BENCH-0000123"),
        ("products_search_rare", f"{products}search=model+996+blender"),
        ("products_search_description_only", f"{products}page=1&page_size=20&search=benchmarks"),
        ("products_search_last_page", f"{products}page=1487&page_size=20&search=blender"),
    ]


def measure(base: str, info: dict[str, Any], requests: int, only: set[str] | None) -> list[dict[str, Any]]:
    results = []
    unique = 0
    with httpx.Client(base_url=base, timeout=120) as client:
        for name, path in cases(info):
            if only and name not in only:
                continue
            timings = []
            status = set()
            first = 0.0
            for n in range(2 + requests):
                unique += 1
                url = f"{path}&_={unique}" if path.startswith("/api/products/?") else path
                started = time.perf_counter()
                response = client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
                if n == 0:
                    first = elapsed
                if n >= 2:
                    timings.append(elapsed)
                    status.add(response.status_code)
            timings.sort()
            body = response.json()
            results.append(
                {
                    "case": name,
                    "path": path,
                    "first_ms": round(first, 1),
                    "median_ms": round(statistics.median(timings), 1),
                    "p90_ms": round(timings[int(0.9 * (len(timings) - 1))], 1),
                    "max_ms": round(timings[-1], 1),
                    "status": sorted(status),
                    "count": body.get("total_products", body.get("count")),
                }
            )
            r = results[-1]
            print(
                f"  {name:<36} first {r['first_ms']:7.1f}  median {r['median_ms']:7.1f} ms  p90 {r['p90_ms']:7.1f}"
                f"  max {r['max_ms']:7.1f}  HTTP {r['status']}  rows {r['count']}  {path}",
                flush=True,
            )
    return results


def bench(database: str, url: str | None, args: argparse.Namespace, keep: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shop-big-") as var_dir:
        # The server's own state (Redis and its rate-limit counts, keys) is new on every run; only the
        # database and its description are kept.
        data_dir = keep if keep is not None else Path(var_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        url = url or f"sqlite:///{data_dir}/shop.sqlite3"
        env = {
            **os.environ,
            "APP_ENV": "development",
            "VAR_DIR": var_dir,
            "DATABASE_URL": url,
            "LOG_LEVEL": "WARNING",
        }
        sizes = {"products": args.products, "categories": args.categories, "depth": args.depth}
        kept = data_dir / "catalog.json"
        info = json.loads(kept.read_text()) if keep is not None and kept.exists() else None
        if info is not None and {k: info.get(k) for k in sizes} != sizes:
            raise SystemExit(f"{kept} describes another catalog ({info}); use another --keep directory")
        subprocess.run([SHOP, "migrate"], env=env, check=True, capture_output=True, timeout=1800)  # noqa: S603
        if info is None:
            subprocess.run([SHOP, "seed-demo"], env=env, check=True, capture_output=True, timeout=300)  # noqa: S603
            made = subprocess.run(  # noqa: S603
                [
                    sys.executable,
                    str(ROOT / "bench" / "make_catalog.py"),
                    "--url",
                    url,
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
                timeout=1200,
            )
            info = json.loads(made.stdout)
            if keep is not None:
                kept.write_text(json.dumps({**info, **sizes}))
            verb = "generated"
        else:
            verb = "reused"
        size = ""
        if database == "sqlite":
            size = f", file {(data_dir / 'shop.sqlite3').stat().st_size / 1e6:.0f} MB"
        print(
            f"{database}: {verb} {info['products']} products, {info['categories']} categories "
            f"(depth {info['depth']}, {info['roots']} roots, {info['leaves']} leaves) in {info['seconds']} s{size}",
            flush=True,
        )
        with served(env, var_dir) as base:
            results = measure(base, info, args.requests, set(args.only.split(",")) if args.only else None)
    return {"database": database, "catalog": info, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--categories", type=int, default=10_000)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="also run against a throwaway PostgreSQL 15")
    parser.add_argument("--postgres-only", action="store_true")
    parser.add_argument("--keep", type=Path, help="build the databases here once, then reuse them")
    parser.add_argument("--only", help="comma-separated case names to measure")
    args = parser.parse_args()
    keep = args.keep.resolve() if args.keep else None
    started = time.perf_counter()
    runs = []
    if not args.postgres_only:
        runs.append(bench("sqlite", None, args, keep / "sqlite" if keep else None))
    if args.postgres or args.postgres_only:
        with postgres(keep / "postgresql" if keep else None) as url:
            runs.append(bench("postgresql", url, args, keep / "postgresql" / "var" if keep else None))
    print(f"total {time.perf_counter() - started:.0f} s")
    print("JSON " + json.dumps(runs))


if __name__ == "__main__":
    main()
