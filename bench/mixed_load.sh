#!/usr/bin/env bash
# Mixed-workload load test (issue 8): browse 70 %, search 15 %, order 10 %, cancel 5 %, then invariants.
#
#   bash bench/mixed_load.sh                   # MODE=sqlite: `make run`'s shape, one `shop serve` (SQLite,
#                                              #   embedded Redis, notification worker in the process)
#   MODE=postgres bash bench/mixed_load.sh     # throwaway PostgreSQL, API_PROCESSES=2 `shop serve` (worker
#                                              #   off) on two ports + one `shop worker`, one shared Redis
#   DURATION=20s WARMUP=5s CONNECTIONS=32 PRODUCTS=2000 CATEGORIES=30 CUSTOMERS=8 bash bench/mixed_load.sh
#   MIX="browse=70,search=15,order=10,cancel=5" MIX_HOT=0.1 bash bench/mixed_load.sh
#   QUIET_BUSY=0.35 QUIET_WAIT=900 bash bench/mixed_load.sh  # wait (at most QUIET_WAIT s) until the CPUs are
#                                              #   less than QUIET_BUSY busy (~ load 0.7 on 2 cores) before measuring
#   OTHERS_MAX=0.1 ATTEMPTS=3 bash bench/mixed_load.sh       # measure again (same servers, after a new quiet
#                                              #   wait and warm-up) while other processes took more than OTHERS_MAX
#                                              #   of the machine's CPU during the measured run, ATTEMPTS runs at most
#   RESULTS=/tmp/mixed.json bash bench/mixed_load.sh         # append the figures as a JSON line
#   PROFILE_DIR=/tmp/prof bash bench/mixed_load.sh           # py-spy (PY_SPY, PY_SPY_ARGS) of each API process
#                                              #   during each measured run: PROFILE_DIR/<mode>-api<N>-<run>.txt
#   KEEP=1 bash bench/mixed_load.sh            # keep the temp directory (database, logs, samples)
#
# Steps: temp VAR_DIR -> [PostgreSQL cluster + Redis] -> shop migrate -> shop seed-demo -> bench/make_catalog.py
# -> bench/mixed_setup.py (customers + tokens, stock, id lists) -> servers (+ worker) on free loopback ports
# -> wait for a quiet machine -> warm-up -> measured run, again while others took the CPU (wrk with bench/mixed_load.lua, as many threads as
# connections; with 2 API processes two wrk instances side by side, half the connections each) ->
# bench/mixed_invariants.py (waits for the outbox and the notifications to drain, then checks stock,
# outbox and notification log against the database and wrk's counts) -> bench/mixed_report.py (per class
# req/s, p50, p99, non-2xx; CPU used by us and by others during the run) -> stop everything.
# Exits non-zero when an invariant is broken or an unexpected status (non-2xx other than a stock-out 400 on an order) or
# a server error was seen. All traffic is on 127.0.0.1; every wrk run is bounded by -d.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

MODE="${MODE:-sqlite}"
DURATION="${DURATION:-20s}"
WARMUP="${WARMUP:-5s}"
CONNECTIONS="${CONNECTIONS:-32}"
PRODUCTS="${PRODUCTS:-2000}"
CATEGORIES="${CATEGORIES:-30}"
CUSTOMERS="${CUSTOMERS:-8}"
API_PROCESSES="${API_PROCESSES:-2}"
QUIET_BUSY="${QUIET_BUSY:-0.35}"
QUIET_WAIT="${QUIET_WAIT:-900}"
OTHERS_MAX="${OTHERS_MAX:-0.1}"
ATTEMPTS="${ATTEMPTS:-3}"
DRAIN_TIMEOUT="${DRAIN_TIMEOUT:-180}"
RESULTS="${RESULTS:-}"
PROFILE_DIR="${PROFILE_DIR:-}"
PY_SPY="${PY_SPY:-py-spy}"
PY_SPY_ARGS="${PY_SPY_ARGS:-}"
export MIX="${MIX:-browse=70,search=15,order=10,cancel=5}" MIX_HOT="${MIX_HOT:-0.1}"

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
[[ "$MODE" == sqlite || "$MODE" == postgres ]] || { echo "MODE is sqlite or postgres" >&2; exit 2; }
[[ "$MODE" == sqlite ]] && API_PROCESSES=1

VAR_DIR="$(mktemp -d /tmp/shop-mixed-bench.XXXXXX)"
OUT="$VAR_DIR/mixed"
mkdir -p "$OUT"
API_PIDS=()
WORKER_PID=""
cleanup() {
  bench_stop "${API_PIDS[@]}" "$WORKER_PID" "$REDIS_PID"
  bench_pg_stop
  if [[ -n "${KEEP:-}" ]]; then echo "kept $VAR_DIR" >&2; else rm -rf "$VAR_DIR"; fi
}
trap cleanup EXIT INT TERM

export APP_ENV=development VAR_DIR LOG_LEVEL=WARNING RATE_LIMITS_ENABLED=false  # throughput, not limits
unset DATABASE_URL REDIS_URL
if [[ "$MODE" == postgres ]]; then
  PG_OPTIONS="${PG_OPTIONS:--c shared_buffers=256MB -c synchronous_commit=off}"
  bench_pg_start
  export DATABASE_URL="$PG_URL"
  bench_redis_start "$VAR_DIR"
  export REDIS_URL
  export WORKER_IN_PROCESS=false
  DB_URL="$PG_URL"
else
  export WORKER_IN_PROCESS=true
  DB_URL="sqlite:///$VAR_DIR/shop.sqlite3"
fi

"$SHOP" migrate >/dev/null
"$SHOP" seed-demo >/dev/null
CATALOG_JSON="$("$PY" bench/make_catalog.py --url "$DB_URL" --products "$PRODUCTS" --categories "$CATEGORIES")"
SETUP_JSON="$("$PY" bench/mixed_setup.py --out "$OUT" --customers "$CUSTOMERS" --hot-stock "${HOT_STOCK:-20}")"

URLS=()
for n in $(seq "$API_PROCESSES"); do
  port="$(bench_free_port)"
  "$SHOP" serve --host 127.0.0.1 --port "$port" >"$VAR_DIR/api$n.log" 2>&1 &
  API_PIDS+=($!)
  URLS+=("http://127.0.0.1:$port")
  bench_wait_http "http://127.0.0.1:$port/api/ready/" "${API_PIDS[-1]}" "$VAR_DIR/api$n.log"
done
if [[ "$MODE" == postgres ]]; then
  "$SHOP" worker >"$VAR_DIR/worker.log" 2>&1 &
  WORKER_PID=$!
fi

bench_machine
echo "mode:    $MODE; ${URLS[*]} ($API_PROCESSES shop serve, WORKER_IN_PROCESS=$WORKER_IN_PROCESS${WORKER_PID:+, + shop worker}); database $(sed 's/@.*//;s/+asyncpg//' <<<"$DB_URL")"
echo "catalog: $CATALOG_JSON"
echo "setup:   $SETUP_JSON"
echo "load:    wrk -t$CONNECTIONS -c$CONNECTIONS in total over $API_PROCESSES instance(s), $WARMUP warm-up + $DURATION measured; MIX=$MIX, MIX_HOT=$MIX_HOT"

# run_wrk NAME DURATION: wrk against every API process at once (connections split evenly), samples and
# wrk's JSON line per instance in $OUT/NAME-<n>.{txt,json}
run_wrk() {
  local name="$1" duration="$2" per=$((CONNECTIONS / API_PROCESSES)) n pids=()
  for n in $(seq "$API_PROCESSES"); do
    MIX_DIR="$OUT" MIX_SAMPLES="$OUT/$name-$n.txt" MIX_SEED="$n$RANDOM" \
      wrk -t"$per" -c"$per" -d"$duration" --timeout 10s -s bench/mixed_load.lua "${URLS[$((n - 1))]}" \
      >"$OUT/$name-$n.out" 2>&1 &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n"; done
  for n in $(seq "$API_PROCESSES"); do
    sed -n 's/^WRK_JSON //p' "$OUT/$name-$n.out" >"$OUT/$name-$n.json"
    [[ -s "$OUT/$name-$n.json" ]] || { echo "wrk $name-$n printed no figures:" >&2; cat "$OUT/$name-$n.out" >&2; exit 1; }
  done
}

STATUS=0
attempt=0
while :; do
  attempt=$((attempt + 1))
  bench_wait_quiet "$QUIET_BUSY" "$QUIET_WAIT"
  run_wrk "warmup-$attempt" "$WARMUP"
  SPY_PIDS=()
  if [[ -n "$PROFILE_DIR" ]]; then
    mkdir -p "$PROFILE_DIR"
    for n in $(seq "$API_PROCESSES"); do
      # shellcheck disable=SC2086
      "$PY_SPY" record --pid "${API_PIDS[$((n - 1))]}" --duration "${DURATION%s}" --format raw --idle $PY_SPY_ARGS \
        --output "$PROFILE_DIR/$MODE-api$n-$attempt.txt" >/dev/null 2>&1 &
      SPY_PIDS+=($!)
    done
    sleep 0.5
  fi
  "$PY" bench/mixed_report.py cpu-snapshot "$OUT/cpu-before-$attempt.json"
  run_wrk "measured-$attempt" "$DURATION"
  "$PY" bench/mixed_report.py cpu-snapshot "$OUT/cpu-after-$attempt.json"
  LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
  for pid in "${SPY_PIDS[@]}"; do wait "$pid" || echo "py-spy exited with $?" >&2; done

  echo
  echo "measured run $attempt ($MODE, load average after it: $LOAD_AFTER):"
  "$PY" bench/mixed_report.py report --samples "$OUT/measured-$attempt"-*.txt \
    --wrk-json "$OUT/measured-$attempt"-*.json --cpu-before "$OUT/cpu-before-$attempt.json" \
    --cpu-after "$OUT/cpu-after-$attempt.json" --ours $$ --ours-match "$VAR_DIR" ${PG_BASE:+"$PG_BASE"} \
    --label "$MODE" --json "$OUT/report-$attempt.json" | tee "$OUT/report-$attempt.txt"
  grep -q '^unexpected answers .*: 0$' "$OUT/report-$attempt.txt" || STATUS=1
  OTHERS="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["cpu"]["others_share"])' "$OUT/report-$attempt.json")"
  if "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$OTHERS" "$OTHERS_MAX"; then
    break
  fi
  if ((attempt >= ATTEMPTS)); then
    echo "NOT QUIET: other processes used $OTHERS of the machine during the last of $attempt runs (limit $OTHERS_MAX); keeping its figures" >&2
    break
  fi
  echo "run $attempt discarded: other processes used $OTHERS of the machine (limit $OTHERS_MAX); waiting to run again"
done

echo
echo "invariants (after the notification worker has drained the outbox):"
"$PY" bench/mixed_invariants.py --dir "$OUT" --samples "$OUT"/warmup-*.txt "$OUT"/measured-*.txt \
  --in-flight $((CONNECTIONS * 2 * attempt)) --wait "$DRAIN_TIMEOUT" --json "$OUT/invariants.json" || STATUS=1
if [[ -n "$RESULTS" ]]; then
  "$PY" - "$RESULTS" "$OUT/report-$attempt.json" "$OUT/invariants.json" "$attempt" <<'EOF2'
import json, sys
results, report, invariants, attempts = sys.argv[1:]
record = {**json.load(open(report)), "runs": int(attempts), "invariants": json.load(open(invariants))}
with open(results, "a") as out:
    out.write(json.dumps(record) + "\n")
EOF2
fi

bench_stop "${API_PIDS[@]}" "$WORKER_PID"
# Server-side errors: "client disconnected prematurely" is wrk closing its connections at the end of a run
# while a request body was still unread; the saq heartbeat thread may complain at shutdown (SIGTERM).
ERRORS="$(cat "$VAR_DIR"/api*.log "$VAR_DIR"/worker.log 2>/dev/null \
  | grep -E '"level": ?"(error|critical)"|^ERROR|Traceback' \
  | grep -v -e 'client disconnected prematurely' -e 'HeartbeatManager' || true)"
if [[ -n "$ERRORS" ]]; then
  echo "server errors logged:" >&2
  sort <<<"$ERRORS" | uniq -c | sort -rn | head -10 >&2
  STATUS=1
else
  echo "server logs: no errors (other than wrk disconnecting at the end of a run)"
fi
exit "$STATUS"
