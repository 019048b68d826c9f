"""Every endpoint as a share of the floor, measured in one run on one server shape.

    .venv/bin/python bench/floor.py                    # make run's shape: shop serve, one process per core
    .venv/bin/python bench/floor.py --processes 1      # one serving process (and the floor with one)
    .venv/bin/python bench/floor.py --only floor,product_detail --duration 5
    .venv/bin/python bench/floor.py --json /tmp/floor.json   # also write the rows as JSON lines
    .venv/bin/python bench/floor.py --postgres         # the production shape: PostgreSQL, 2 processes + worker

Absolute req/s drift 2-3x between machines of this kind, so every figure is stated beside a floor measured
in the same run: a bare Litestar app with one JSON route answering a ~1 kB constant (bench/floor_app.py),
served by the same server (uvicorn) with the same number of processes. Then, on a throwaway SQLite
database with the demo data and a 2,000-product / 30-category catalog (bench/make_catalog.py), `shop serve
--processes N` (rate limits off, console notification channels, its one worker beside the serving
processes) gets each scenario: a warm-up, then a measured wrk run (-t2 -c32 by default) whose requests
take random paths (bench/paths.lua) or POST orders (bench/order_load.lua).

The floor is measured before our server starts and again after it stops (`floor_again`): the machine's own
speed drifted by ±10 % between runs minutes apart, so each share is of the mean of the two.

Per row: req/s, p50/p99 in ms, the server's CPU per request (every process of the server: serving
processes, worker, Redis; from /proc; on PostgreSQL also the database server's own, apart) and the cores it
used, and req/s as a share of the floors' mean.
Orders are checked afterwards: every notification relayed and sent (console channels) by the end of the run.
Needs wrk (apt-get install -y wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from big_catalog import postgres  # bench/ is on the path when this runs as a script

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
CUSTOMER = "demo-customer-token-999"
STAFF = "long-lasting-token-999"
TICKS = os.sysconf("SC_CLK_TCK")
ORDERINGS = ["name", "-name", "price", "-price", "created_at", "-created_at"]
WORDS = ["phone", "blender", "red", "kettle", "laptop", "quiet", "lamp", "mug", "chair", "watch"]


@dataclass
class Row:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    cores: float
    errors: int
    requests: int
    share_of_floor: float = 1.0
    note: str = ""
    database_cpu_ms_per_request: float | None = None
    """PostgreSQL's own CPU (postmaster and backends) per request; None on SQLite, which runs in our processes."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree(pid: int) -> list[int]:
    """`pid` and every descendant (from /proc/<pid>/task/*/children)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                stack += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (a process that is gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


@contextmanager
def server(command: list[str], env: dict[str, str], health: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)  # noqa: S603
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(health, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            time.sleep(2)  # every serving process up, not only the first to answer
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def wrk(base: str, script: str, args: argparse.Namespace, env: dict[str, str], seconds: float) -> dict[str, Any]:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{max(int(seconds), 1)}s", "--timeout", "10s"]
    out = subprocess.run(  # noqa: S603
        [*command, "-s", script, base], env={**os.environ, **env}, capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    match = re.search(r"^WRK_JSON (.*)$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result: {out}")
    result: dict[str, Any] = json.loads(match.group(1))
    return result


def postmaster(url: str) -> int | None:
    """The pid of the PostgreSQL server listening on `url`'s port (its command line names the port)."""
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if words and words[0].endswith(b"/postgres") and b"-p" in words and port.encode() in words:
            return int(cmdline.parent.name)
    return None


def measure(
    name: str, base: str, script: str, env: dict[str, str], pid: int, args: argparse.Namespace, database: int | None
) -> Row:
    """One scenario: warm-up, then the measured run; `database` is PostgreSQL's server pid (its CPU is counted
    apart), or None."""
    wrk(base, script, args, env, args.warmup)
    pids = tree(pid)
    database_pids = tree(database) if database is not None else []  # backends started since are in its tree too
    cpu_before, wall_before = cpu_seconds(pids), time.monotonic()
    database_before = cpu_seconds(database_pids)
    result = wrk(base, script, args, env, args.duration)
    cpu = cpu_seconds(pids) - cpu_before
    database_cpu = cpu_seconds(tree(database)) - database_before if database is not None else None
    wall = time.monotonic() - wall_before
    requests = max(int(result["requests"]), 1)
    errors = int(result.get("non_2xx", 0)) + int(result.get("socket_errors", 0))
    return Row(
        name=name,
        rps=float(result["rps"]),
        p50_ms=float(result["p50_ms"]),
        p99_ms=float(result["p99_ms"]),
        cpu_ms_per_request=1000 * cpu / requests,
        cores=cpu / wall,
        errors=errors,
        requests=requests,
        database_cpu_ms_per_request=None if database_cpu is None else 1000 * database_cpu / requests,
    )


def write_paths(directory: Path, name: str, paths: list[str]) -> dict[str, str]:
    file = directory / f"{name}.paths"
    file.write_text("\n".join(paths) + "\n")
    return {"PATHS_FILE": str(file)}


def scalars(database: str, sql: str) -> list[Any]:
    """The first column of `sql`'s rows, on the bench's SQLite file or PostgreSQL URL."""
    if not database.startswith("postgresql"):
        with sqlite3.connect(database) as connection:
            return [row[0] for row in connection.execute(sql)]

    async def fetch() -> list[Any]:
        import asyncpg

        connection = await asyncpg.connect(database.replace("postgresql+asyncpg", "postgresql"))
        try:
            return [row[0] for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    return asyncio.run(fetch())


def scenarios(database: str, directory: Path, rng: random.Random) -> dict[str, dict[str, str]]:
    """name -> environment of bench/paths.lua (a file of random paths), from the ids in the database."""
    products = scalars(database, "SELECT id FROM catalog_product WHERE is_active")
    prices = sorted(float(price) for price in scalars(database, "SELECT price FROM catalog_product WHERE is_active"))
    categories = scalars(database, "SELECT id FROM catalog_category")
    unseen = []
    for _ in range(20000):  # a page that exists under its price filter, in one of the six orders
        cents = rng.randint(0, 50000)
        matching = len(prices) - bisect.bisect_left(prices, cents / 100)
        page = rng.randint(1, max((matching + 19) // 20, 1))
        unseen.append(
            f"/api/products/?page={page}&page_size=20&ordering={rng.choice(ORDERINGS)}"
            f"&min_price={cents // 100}.{cents % 100:02d}"
        )
    return {
        "product_detail": write_paths(
            directory, "detail", [f"/api/products/{rng.choice(products)}/" for _ in range(5000)]
        ),
        "category_list": write_paths(directory, "categories", ["/api/products/categories/"]),
        "category_detail": write_paths(
            directory, "category", [f"/api/products/categories/{rng.choice(categories)}/" for _ in range(2000)]
        ),
        "average_price": write_paths(
            directory,
            "average",
            [f"/api/products/categories/{rng.choice(categories)}/average-price/" for _ in range(2000)],
        ),
        "product_pages_unseen": write_paths(directory, "unseen", unseen),
        # a page nobody asked before, as `product_pages_unseen`: `_` (ignored by the API) misses the response cache
        "search": write_paths(
            directory,
            "search",
            [f"/api/products/?search={rng.choice(WORDS)}&page=1&page_size=20&_={n}" for n in range(5000)],
        ),
    }


def orders_drained(database: str, timeout: float = 60) -> str:
    """Wait until the outbox is dispatched and no notification is queued or sending; say how it ended."""
    deadline = time.monotonic() + timeout
    while True:
        pending = scalars(database, "SELECT count(*) FROM kernel_outbox WHERE dispatched_at IS NULL")[0]
        unsent = scalars(database, "SELECT count(*) FROM notify_notification WHERE status IN ('queued', 'sending')")[0]
        sent = scalars(database, "SELECT count(*) FROM notify_notification WHERE status = 'sent'")[0]
        if not pending and not unsent:
            return f"all {sent} notifications sent"
        if time.monotonic() > deadline:
            return f"{pending} events and {unsent} notifications still pending {timeout:g} s after the run"
        time.sleep(0.5)


def main() -> None:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--categories", type=int, default=30)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--json", default="", help="append the rows here as JSON lines")
    parser.add_argument(
        "--postgres", action="store_true", help="serve from a throwaway PostgreSQL 15 (bench/big_catalog.py's)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    only = {name for name in args.only.split(",") if name}
    rng = random.Random(2026)
    var = Path(tempfile.mkdtemp(prefix="shop-floor-"))
    env = {
        **os.environ,
        "APP_ENV": "development",
        "VAR_DIR": str(var),
        "LOG_LEVEL": "WARNING",
        "RATE_LIMITS_ENABLED": "false",
        "WEB_CONCURRENCY": str(args.processes),
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    database = str(var / "shop.sqlite3")
    rows: list[Row] = []
    stack = ExitStack()
    try:
        if args.postgres:
            database = env["DATABASE_URL"] = stack.enter_context(postgres())
        subprocess.run([str(BIN / "shop"), "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
        subprocess.run([str(BIN / "shop"), "seed-demo"], env=env, check=True, capture_output=True)  # noqa: S603
        subprocess.run(  # noqa: S603
            [str(BIN / "python"), "bench/make_catalog.py", "--url", database if args.postgres else f"sqlite:///{database}",
             "--products", str(args.products), "--categories", str(args.categories)],
            env=env, check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        paths = scenarios(database, var, rng)
        server_pid = postmaster(database) if args.postgres else None

        def wanted(name: str) -> bool:
            return not only or name in only

        def measure_floor(name: str) -> Row:
            port = free_port()
            floor_base = f"http://127.0.0.1:{port}"
            floor_command = [str(BIN / "python"), "-m", "uvicorn", "--factory", "bench.floor_app:create_app",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.processes),
                             "--log-level", "warning", "--no-access-log"]  # fmt: skip
            with server(floor_command, env, f"{floor_base}/floor", var / "floor.log") as floor:
                floor_env = write_paths(var, "floor", ["/floor"])
                return measure(name, floor_base, "bench/paths.lua", floor_env, floor.pid, args, None)

        rows.append(measure_floor("floor"))

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        shop_command = [str(BIN / "shop"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        with server(shop_command, env, f"{base}/api/health/", var / "serve.log") as shop:
            for name, script_env in paths.items():
                if wanted(name):
                    rows.append(measure(name, base, "bench/paths.lua", script_env, shop.pid, args, server_pid))
            staff = {"Authorization": f"Bearer {STAFF}"}
            products = httpx.get(f"{base}/api/products/", params={"page_size": 5, "ordering": "price"}).json()
            ids = [product["id"] for product in products["results"]]
            for product_id in ids:
                httpx.patch(f"{base}/api/products/{product_id}/", json={"stock_quantity": 10_000_000}, headers=staff)
            for name, lines in (("order_1_line", ids[:1]), ("order_5_lines", ids[:5])):
                if not wanted(name):
                    continue
                body = json.dumps({"items": [{"product_id": pid, "quantity": 1} for pid in lines]})
                order_env = {"ORDER_BODY": body, "ORDER_TOKEN": CUSTOMER}
                orders_url = f"{base}/api/orders/"
                row = measure(name, orders_url, "bench/order_load.lua", order_env, shop.pid, args, server_pid)
                row.note = orders_drained(database)
                rows.append(row)
        # the floor again once our server has stopped: the machine's own speed drifts by ±10 % within minutes, so
        # every share is of the mean of the two floors around it
        rows.append(measure_floor("floor_again"))
    finally:
        stack.close()
        shutil.rmtree(var, ignore_errors=True)

    floor_rps = (rows[0].rps + rows[-1].rps) / 2
    for row in rows:
        row.share_of_floor = row.rps / floor_rps
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}")
    print(f"database: {'PostgreSQL 15 (fsync off)' if args.postgres else 'SQLite (WAL)'}")
    print(f"shape: {args.processes} serving process(es) (uvicorn), wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration:g}s after {args.warmup:g} s warm-up; catalog {args.products} products / "
          f"{args.categories} categories")  # fmt: skip
    # "CPU ms/req": our processes (API, worker, Redis); on PostgreSQL, "DB CPU ms/req" is the server's own
    print("| request | req/s | p50 ms | p99 ms | CPU ms/req | DB CPU ms/req | cores | of floor | errors | note |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        database_cpu = "-" if row.database_cpu_ms_per_request is None else f"{row.database_cpu_ms_per_request:.2f}"
        print(
            f"| {row.name} | {row.rps:,.0f} | {row.p50_ms:.1f} | {row.p99_ms:.1f} | {row.cpu_ms_per_request:.2f} "
            f"| {database_cpu} | {row.cores:.2f} | {100 * row.share_of_floor:.1f} % | {row.errors} | {row.note} |"
        )
    if args.json:
        with open(args.json, "a") as out:
            for row in rows:
                out.write(json.dumps({**row.__dict__, "processes": args.processes, "postgres": args.postgres}) + "\n")


if __name__ == "__main__":
    main()
