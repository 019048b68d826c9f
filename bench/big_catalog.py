"""Latency of the subtree endpoints on a big catalog: 1,000,000 products, 10,000 categories (depth 4).

    .venv/bin/python bench/big_catalog.py                      # SQLite
    .venv/bin/python bench/big_catalog.py --postgres           # SQLite, then a throwaway PostgreSQL 15
    .venv/bin/python bench/big_catalog.py --products 200000 --categories 2000 --requests 10

Per database: `shop migrate` into an empty database, bench/make_catalog.py (executemany / COPY in large
transactions, then ANALYZE), `shop serve` (one uvicorn process, LOG_LEVEL=WARNING) on a free loopback
port, then for each URL 2 warm-up requests and --requests sequential timed requests (client wall clock,
one keep-alive connection, anonymous). Prints median / p90 / max in milliseconds, and a JSON line.

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
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on a loopback port; yields an asyncpg URL."""
    bindir = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
    base = Path(tempfile.mkdtemp(prefix="shop-bench-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(base, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=300)  # noqa: S603

    try:
        run(str(bindir / "initdb"), "-D", str(base / "data"), "-U", "shop", "--auth=trust", "-E", "UTF8")
        options = (
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c shared_buffers=256MB -c max_wal_size=4GB -c max_connections=100"
        )
        run(str(bindir / "pg_ctl"), "-D", str(base / "data"), "-o", options, "-l", str(base / "log"), "-w", "start")
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "shop", "shop")
        yield f"postgresql+asyncpg://shop@127.0.0.1:{port}/shop"
    finally:
        with suppress(subprocess.CalledProcessError):
            run(str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m", "fast", "-w", "stop")
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


def measure(base: str, info: dict[str, Any], requests: int) -> list[dict[str, Any]]:
    root, leaf = info["root_id"], info["leaf_id"]
    cases = [
        ("average_price_root", f"/api/products/categories/{root}/average-price/"),
        ("average_price_leaf", f"/api/products/categories/{leaf}/average-price/"),
        ("products_category_root", f"/api/products/?category={root}&page_size=50"),
        ("products_category_leaf", f"/api/products/?category={leaf}&page_size=50"),
        ("products_page_1", "/api/products/?page=1&page_size=20"),
        ("category_list", "/api/products/categories/"),
        ("products_search", "/api/products/?page=1&page_size=20&search=blender"),
    ]
    results = []
    with httpx.Client(base_url=base, timeout=120) as client:
        for name, path in cases:
            for _ in range(2):
                client.get(path)
            timings = []
            status = set()
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
                status.add(response.status_code)
            timings.sort()
            body = response.json()
            results.append(
                {
                    "case": name,
                    "path": path,
                    "median_ms": round(statistics.median(timings), 1),
                    "p90_ms": round(timings[int(0.9 * (len(timings) - 1))], 1),
                    "max_ms": round(timings[-1], 1),
                    "status": sorted(status),
                    "count": body.get("total_products", body.get("count")),
                }
            )
            r = results[-1]
            print(
                f"  {name:<24} median {r['median_ms']:8.1f} ms  p90 {r['p90_ms']:8.1f}  max {r['max_ms']:8.1f}"
                f"  HTTP {r['status']}  rows/products {r['count']}  {path}",
                flush=True,
            )
    return results


def bench(database: str, url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shop-big-") as var_dir:
        env = {**os.environ, "APP_ENV": "development", "VAR_DIR": var_dir, "LOG_LEVEL": "WARNING"}
        if url:
            env["DATABASE_URL"] = url
        else:
            env.pop("DATABASE_URL", None)
            url = f"sqlite:///{var_dir}/shop.sqlite3"
        subprocess.run([SHOP, "migrate"], env=env, check=True, capture_output=True, timeout=300)  # noqa: S603
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
        size = ""
        if database == "sqlite":
            size = f", file {Path(var_dir, 'shop.sqlite3').stat().st_size / 1e6:.0f} MB"
        print(
            f"{database}: generated {info['products']} products, {info['categories']} categories "
            f"(depth {info['depth']}, {info['roots']} roots, {info['leaves']} leaves) in {info['seconds']} s{size}",
            flush=True,
        )
        with served(env, var_dir) as base:
            results = measure(base, info, args.requests)
    return {"database": database, "catalog": info, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--categories", type=int, default=10_000)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="also run against a throwaway PostgreSQL 15")
    parser.add_argument("--postgres-only", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    runs = []
    if not args.postgres_only:
        runs.append(bench("sqlite", None, args))
    if args.postgres or args.postgres_only:
        with postgres() as url:
            runs.append(bench("postgresql", url, args))
    print(f"total {time.perf_counter() - started:.0f} s")
    print("JSON " + json.dumps(runs))


if __name__ == "__main__":
    main()
