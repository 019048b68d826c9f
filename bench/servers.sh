#!/usr/bin/env bash
# uvicorn against granian on the floor app (bench/floor_app.py: a bare Litestar route answering a ~1 kB
# constant), same process count, same wrk, runs alternated: what each server itself costs per request.
#
#   bash bench/servers.sh                  # 2 processes each, 3 rounds of 8 s
#   PROCESSES=1 ROUNDS=2 bash bench/servers.sh
#
# granian is not a dependency: install it into the venv first (`python3 -m uv pip install --python
# .venv/bin/python granian`). Prints req/s, p50/p99 and the CPU of every server process per request.
set -euo pipefail
cd "$(dirname "$0")/.."
PROCESSES=${PROCESSES:-2}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
PORT=${PORT:-8971}

cpu_ticks() { # the utime + stime of a process tree, in clock ticks
  local total=0 pid
  for pid in $(pgrep -P "$1") "$1"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

run() { # name port command...
  local name=$1 URL="http://127.0.0.1:$2/floor"
  shift 2
  "$@" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 60); do curl -sf -o /dev/null "$URL" && break; sleep 0.5; done
  wrk -t2 -c32 -d2s "$URL" >/dev/null # warm-up
  local before after out rps
  before=$(cpu_ticks "$pid")
  out=$(wrk -t2 -c32 -d"$DURATION" -s bench/wrk_report.lua "$URL" | grep WRK_JSON)
  after=$(cpu_ticks "$pid")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  sleep 1 # the workers exit after their parent
  rps=$(echo "$out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().split(" ", 1)[1])["rps"])')
  echo "$name $out cpu_ms_per_request=$(python3 -c "print(round(($after - $before) * 1000 / $(getconf CLK_TCK) / ($rps * ${DURATION%s}), 3))")"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "# round $round"
  run uvicorn "$PORT" .venv/bin/python -m uvicorn --factory bench.floor_app:create_app --host 127.0.0.1 --port "$PORT" \
    --workers "$PROCESSES" --log-level warning --no-access-log --loop uvloop --http httptools
  run granian $((PORT + 1)) .venv/bin/granian --interface asgi --factory --host 127.0.0.1 --port $((PORT + 1)) \
    --workers "$PROCESSES" --loop uvloop --log-level warning --no-access-log bench.floor_app:create_app
done
