#!/usr/bin/env bash
# Load test of order creation (POST /api/orders/) with wrk, against a throwaway SQLite database.
#
#   bash bench/order_load.sh                          # 1 `shop serve` process, in-process notification worker
#   WORKER_IN_PROCESS=false bash bench/order_load.sh  # same, without the in-process worker (outbox not relayed)
#   SEPARATE_WORKER=1 bash bench/order_load.sh        # `shop serve` without its worker + a `shop worker` process
#       (the production shape: notifications relayed and sent while the orders come in, on the same 2 cores)
#   DURATION=10s WARMUP=3s CONNECTIONS=32 THREADS=2 TARGET=870 bash bench/order_load.sh
#   RESULTS=/tmp/orders.json bash bench/order_load.sh # also append the figures as JSON lines
#   KEEP=1 bash bench/order_load.sh                   # keep the temp VAR_DIR (database, serve.log) afterwards
#   PROFILE_DIR=/tmp/prof PY_SPY=/path/to/py-spy bash bench/order_load.sh  # py-spy the server during each
#       measured run: PROFILE_DIR/<order>.txt (collapsed stacks, idle samples excluded); PY_SPY_ARGS=--gil adds
#       py-spy options
#
# Steps: temp VAR_DIR -> shop migrate -> shop seed-demo -> shop serve on a free loopback port -> raise the stock
# of every product to 1,000,000 (PATCH, staff token) -> per scenario (1-line and 5-line order, customer token):
# a warm-up run, then a measured run -> stop the server -> check in the database that, for every product,
# stock taken == units in order lines, and compare with the 201 responses wrk counted -> print the figures.
# Needs wrk (apt-get install -y wrk) and sqlite3. Every wrk run is bounded by -d; all traffic goes to 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
TARGET="${TARGET:-870}"
RESULTS="${RESULTS:-}"
PROFILE_DIR="${PROFILE_DIR:-}"
PY_SPY="${PY_SPY:-py-spy}"
PY_SPY_ARGS="${PY_SPY_ARGS:-}"  # e.g. --gil (only the thread holding the GIL: where the Python CPU goes)
STOCK=1000000
CUSTOMER_TOKEN=demo-customer-token-999
STAFF_TOKEN=long-lasting-token-999

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 not found: apt-get install -y sqlite3" >&2; exit 1; }

VAR_DIR="$(mktemp -d /tmp/shop-order-bench.XXXXXX)"
SERVER_PID=""
stop_server() {
  bench_stop "$SERVER_PID"
  SERVER_PID=""
}
stop_worker() {
  bench_stop "$WORKER_PID"
  WORKER_PID=""
}
cleanup() {
  stop_worker
  stop_server
  if [[ -n "${KEEP:-}" ]]; then echo "kept $VAR_DIR (database, serve.log)" >&2; else rm -rf "$VAR_DIR"; fi
}
trap cleanup EXIT INT TERM

export APP_ENV=development VAR_DIR LOG_LEVEL=WARNING RATE_LIMITS_ENABLED=false  # throughput, not limits
SEPARATE_WORKER="${SEPARATE_WORKER:-}"
if [[ -n "$SEPARATE_WORKER" ]]; then WORKER_IN_PROCESS=false; fi
export WORKER_IN_PROCESS="${WORKER_IN_PROCESS:-true}"
WORKER_PID=""
unset DATABASE_URL REDIS_URL  # SQLite in VAR_DIR and the embedded Redis, as `shop serve` does by default
DB="$VAR_DIR/shop.sqlite3"

"$SHOP" migrate >/dev/null
"$SHOP" seed-demo >/dev/null

PORT="$(bench_free_port)"
BASE="http://127.0.0.1:$PORT"
"$SHOP" serve --host 127.0.0.1 --port "$PORT" >"$VAR_DIR/serve.log" 2>&1 &
SERVER_PID=$!
bench_wait_http "$BASE/api/health/" "$SERVER_PID" "$VAR_DIR/serve.log"
if [[ -n "$SEPARATE_WORKER" ]]; then
  REDIS_URL="$(sed -n 's/^Embedded Redis on //p' "$VAR_DIR/serve.log")" "$SHOP" worker >"$VAR_DIR/worker.log" 2>&1 &
  WORKER_PID=$!
fi

# Enough stock for the whole run, through the API (staff token).
for id in $(sqlite3 "$DB" "SELECT id FROM catalog_product ORDER BY id"); do
  status="$(curl -s -o "$VAR_DIR/patch.out" -w '%{http_code}' -X PATCH "$BASE/api/products/$id/" \
    -H "Authorization: Bearer $STAFF_TOKEN" -H 'Content-Type: application/json' -d "{\"stock_quantity\": $STOCK}")"
  [[ "$status" == "200" ]] || { echo "PATCH product $id answered $status: $(cat "$VAR_DIR/patch.out")" >&2; exit 1; }
done
sqlite3 "$DB" "SELECT id, stock_quantity FROM catalog_product ORDER BY id" >"$VAR_DIR/stock_before.txt"
ORDERS_BEFORE="$(sqlite3 "$DB" "SELECT count(*) FROM ordering_order")"

cpu_ticks() {  # utime + stime of the server process (clock ticks)
  bench_cpu_ticks "$SERVER_PID"
}
worker_ticks() {  # the same for the separate worker process, 0 without one
  bench_cpu_ticks "$WORKER_PID"
}
CLK_TCK="$(getconf CLK_TCK)"

bench_machine
echo "server:  $BASE (1 shop serve process, WORKER_IN_PROCESS=$WORKER_IN_PROCESS, separate worker: ${SEPARATE_WORKER:-no})  load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION after a $WARMUP warm-up"
printf '%-8s %9s %8s %8s %8s %7s %6s %8s  %s\n' order "req/s" "p50 ms" "p99 ms" "max ms" "non2xx" "sockerr" "cpu ms/req" statuses

# name | body | units per order
SCENARIOS=(
  '1-line|{"items": [{"product_id": 1, "quantity": 1}]}|1'
  '5-line|{"items": [{"product_id": 1, "quantity": 1}, {"product_id": 2, "quantity": 1}, {"product_id": 3, "quantity": 1}, {"product_id": 4, "quantity": 1}, {"product_id": 5, "quantity": 1}]}|5'
)
WRK_201=0      # 201 responses wrk saw (warm-ups included)
WRK_UNITS=0    # units in those orders
PROBE_201=0
for entry in "${SCENARIOS[@]}"; do
  IFS='|' read -r name body units <<<"$entry"
  status="$(curl -s -o "$VAR_DIR/probe.out" -w '%{http_code}' -X POST "$BASE/api/orders/" \
    -H "Authorization: Bearer $CUSTOMER_TOKEN" -H 'Content-Type: application/json' -d "$body")"
  [[ "$status" == "201" ]] || { echo "$name: probe answered $status: $(cat "$VAR_DIR/probe.out")" >&2; exit 1; }
  PROBE_201=$((PROBE_201 + 1))
  WRK_UNITS=$((WRK_UNITS + units))
  export ORDER_BODY="$body" ORDER_TOKEN="$CUSTOMER_TOKEN"
  warm="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" --timeout 10s -s bench/order_load.lua "$BASE/api/orders/" \
    | sed -n 's/^WRK_JSON //p')"
  SPY_PIDS=()
  if [[ -n "$PROFILE_DIR" ]]; then
    mkdir -p "$PROFILE_DIR"
    secs="${DURATION%s}"
    "$PY_SPY" record --pid "$SERVER_PID" --duration "$secs" --rate 100 --format raw $PY_SPY_ARGS \
      --output "$PROFILE_DIR/$name.txt" >/dev/null 2>&1 &
    SPY_PIDS+=($!)
    sleep 0.5
  fi
  before="$(cpu_ticks)"; wbefore="$(worker_ticks)"
  line="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s -s bench/order_load.lua "$BASE/api/orders/" \
    | sed -n 's/^WRK_JSON //p')"
  after="$(cpu_ticks)"; wafter="$(worker_ticks)"
  for pid in "${SPY_PIDS[@]}"; do wait "$pid" || echo "py-spy exited with $?" >&2; done
  counts="$("$PY" - "$name" "$units" "$TARGET" "$warm" "$line" "$((after - before))" "$CLK_TCK" "$WORKER_IN_PROCESS" "$RESULTS" "$((wafter - wbefore))" <<'EOF'
import json, sys
name, units, target, warm, line, ticks, clk_tck, in_process, results, worker_ticks = sys.argv[1:]
w, r = json.loads(warm), json.loads(line)
cpu_ms = int(ticks) / int(clk_tck) * 1000 / max(r["requests"], 1)
worker_cpu_ms = int(worker_ticks) / int(clk_tck) * 1000 / max(r["requests"], 1)
statuses = " ".join(f"{code}:{n}" for code, n in r["status"].items())
warm_non_2xx = w["non_2xx"] + w["socket_errors"]
verdict = f"target >= {target}: {'MET' if r['rps'] >= int(target) else 'missed'}"
print(
    f"{name:<8} {r['rps']:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f} {r['non_2xx']:>7} "
    f"{r['socket_errors']:>6} {cpu_ms:>8.2f}  {statuses}  ({verdict}; warm-up {w['rps']:.1f} req/s, "
    f"{warm_non_2xx} errors{f'; separate worker {worker_cpu_ms:.2f} cpu ms/req' if worker_cpu_ms else ''})",
    file=sys.stderr,
)
if results:
    with open(results, "a") as out:
        record = {"order": name, "units": int(units), "worker_in_process": in_process, "target_rps": int(target),
                  "server_cpu_ms_per_request": round(cpu_ms, 3),
                  "worker_cpu_ms_per_request": round(worker_cpu_ms, 3), "warmup": w, **r}
        out.write(json.dumps(record) + "\n")
created = w["status"].get("201", 0) + r["status"].get("201", 0)
print(created, created * int(units))
EOF
)" 2>&1
  # the python block prints the table row on stderr (shown) and "<201s> <units>" on stdout (kept)
  read -r created created_units <<<"$(tail -n1 <<<"$counts")"
  head -n -1 <<<"$counts"
  WRK_201=$((WRK_201 + created))
  WRK_UNITS=$((WRK_UNITS + created_units))
done

sleep 1  # requests still in flight when wrk stopped are finished by the server (their answers go unread)
if [[ -n "$SEPARATE_WORKER" ]]; then  # let the worker finish the notifications of every order (at most 120 s)
  drain_start=$SECONDS
  for _ in $(seq 240); do
    [[ "$(sqlite3 "$DB" "SELECT count(*) FROM kernel_outbox WHERE dispatched_at IS NULL")" == 0 ]] && break
    sleep 0.5
  done
  echo "separate worker: outbox drained $((SECONDS - drain_start)) s after the load"
  stop_worker
fi
stop_server

# Invariant: stock taken from each product == units in the order lines for it (every order is pending).
sqlite3 "$DB" "SELECT id, stock_quantity FROM catalog_product ORDER BY id" >"$VAR_DIR/stock_after.txt"
sqlite3 "$DB" "SELECT product_id, sum(quantity) FROM ordering_order_item GROUP BY product_id ORDER BY product_id" \
  >"$VAR_DIR/sold.txt"
read -r DB_ORDERS DB_LINES DB_UNITS <<<"$(sqlite3 -separator ' ' "$DB" \
  "SELECT (SELECT count(*) FROM ordering_order), count(*), coalesce(sum(quantity), 0) FROM ordering_order_item")"
NOT_PENDING="$(sqlite3 "$DB" "SELECT count(*) FROM ordering_order WHERE status <> 'pending'")"
OUTBOX="$(sqlite3 -separator ' ' "$DB" "SELECT count(*), count(dispatched_at) FROM kernel_outbox")"
NOTIFICATIONS="$(sqlite3 "$DB" "SELECT count(*) FROM notify_notification")"
"$PY" - "$VAR_DIR" "$ORDERS_BEFORE" "$DB_ORDERS" "$DB_LINES" "$DB_UNITS" "$NOT_PENDING" "$WRK_201" "$PROBE_201" \
  "$WRK_UNITS" "$OUTBOX" "$NOTIFICATIONS" <<'EOF'
import sys
from pathlib import Path

var_dir, orders_before, orders, lines, units, not_pending, wrk_201, probe_201, wrk_units, outbox, notes = sys.argv[1:]


def table(name: str) -> dict[int, int]:
    rows = (line.split("|") for line in (Path(var_dir) / name).read_text().split())
    return {int(k): int(v) for k, v in rows}


before, after, sold = table("stock_before.txt"), table("stock_after.txt"), table("sold.txt")
bad = [
    f"product {pid}: taken {before[pid] - after[pid]}, in order lines {sold.get(pid, 0)}"
    for pid in sorted(before)
    if before[pid] - after[pid] != sold.get(pid, 0)
]
taken = sum(before[pid] - after[pid] for pid in before)
answered = int(wrk_201) + int(probe_201)
print(
    f"orders in the database: {orders} (before the load: {orders_before}), {lines} lines, {units} units; "
    f"not pending: {not_pending}"
)
print(
    f"201 responses read: {answered} ({probe_201} probes + {wrk_201} by wrk, warm-ups included), {wrk_units} units; "
    f"orders placed but answered after wrk stopped reading: {int(orders) - int(orders_before) - answered}, "
    f"units {int(units) - int(wrk_units)}"
)
print(f"outbox messages (total, dispatched): {outbox}; notification rows: {notes}")
if bad or taken != int(units):
    print("INVARIANT BROKEN: " + "; ".join(bad) + f" (stock taken {taken}, units sold {units})")
    sys.exit(1)
print(f"invariant OK: for each of {len(before)} products, initial - final stock == units in order lines (total {taken})")
EOF
# Server-side errors, by kind. "client disconnected prematurely": wrk closed its connections at the end of a run
# while requests were still waiting for their body to be read (never answered, so not in wrk's counts).
# "HeartbeatManager thread crashed": litestar-saq's heartbeat thread at shutdown (SIGTERM), after the load.
LOG="$VAR_DIR/serve.log"
DISCONNECTS="$(grep -c 'InternalServerException: 500: client disconnected prematurely' "$LOG" || true)"
SHUTDOWN="$(grep -c 'HeartbeatManager thread crashed' "$LOG" || true)"
SERVER_ERRORS="$(grep -c '^ERROR' "$LOG" || true)"
OTHER=$((SERVER_ERRORS - DISCONNECTS - SHUTDOWN))
echo "server log: $SERVER_ERRORS ERROR entries = $DISCONNECTS 'client disconnected prematurely' (wrk stopping)" \
  "+ $SHUTDOWN heartbeat thread at shutdown + $OTHER other"
if ((OTHER > 0)); then
  grep -E '^ERROR|Error:|Exception:' "$LOG" | grep -v -e 'client disconnected prematurely' -e 'HeartbeatManager' \
    -e 'Event loop stopped before Future completed' | sort | uniq -c | sort -rn | head -10 >&2
fi
