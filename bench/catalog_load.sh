#!/usr/bin/env bash
# Load test of the catalog read endpoints with wrk, against a throwaway SQLite database.
#
#   bash bench/catalog_load.sh                       # 2,000 products, 30 categories, 1 uvicorn process
#   WORKERS=2 bash bench/catalog_load.sh             # uvicorn --workers 2 (same app factory)
#   DURATION=10s WARMUP=3s CONNECTIONS=32 THREADS=2 PRODUCTS=2000 CATEGORIES=30 bash bench/catalog_load.sh
#   GZIP=1 bash bench/catalog_load.sh                # send Accept-Encoding: gzip (responses > 1 KiB get compressed)
#   TOKEN=long-lasting-token-999 bash bench/catalog_load.sh   # authenticated (staff) instead of anonymous
#   RESULTS=/tmp/catalog.json bash bench/catalog_load.sh      # also write the figures as JSON lines
#
# Steps: temp VAR_DIR -> shop migrate -> shop seed-demo -> bench/make_catalog.py (replaces the demo catalog)
# -> shop serve on a free loopback port -> per endpoint: a warm-up run, then a measured run -> stop the server.
# Needs wrk (apt-get install -y wrk). Every wrk run is bounded by -d; all traffic goes to 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
PRODUCTS="${PRODUCTS:-2000}"
CATEGORIES="${CATEGORIES:-30}"
DEPTH="${DEPTH:-3}"
WORKERS="${WORKERS:-1}"
RESULTS="${RESULTS:-}"

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }

VAR_DIR="$(mktemp -d /tmp/shop-bench.XXXXXX)"
SERVER_PID=""
cleanup() {
  bench_stop "$SERVER_PID"
  rm -rf "$VAR_DIR"
}
trap cleanup EXIT INT TERM

export APP_ENV=development VAR_DIR LOG_LEVEL=WARNING RATE_LIMITS_ENABLED=false  # throughput, not limits
unset DATABASE_URL  # this benchmark is about the embedded SQLite default
DB_URL="sqlite:///$VAR_DIR/shop.sqlite3"

"$SHOP" migrate >/dev/null
"$SHOP" seed-demo >/dev/null
CATALOG_JSON="$("$PY" bench/make_catalog.py --url "$DB_URL" --products "$PRODUCTS" --categories "$CATEGORIES" --depth "$DEPTH")"
ROOT_ID="$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["root_id"])' "$CATALOG_JSON")"
LEAF_ID="$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["leaf_id"])' "$CATALOG_JSON")"

PORT="$(bench_free_port)"
BASE="http://127.0.0.1:$PORT"
if [[ "$WORKERS" == "1" ]]; then
  PORT="$PORT" "$SHOP" serve --host 127.0.0.1 --port "$PORT" >"$VAR_DIR/serve.log" 2>&1 &
else
  "$PY" -m uvicorn --factory app.asgi:create_app --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
    --log-level warning >"$VAR_DIR/serve.log" 2>&1 &
fi
SERVER_PID=$!
bench_wait_http "$BASE/api/health/" "$SERVER_PID" "$VAR_DIR/serve.log"
sleep 2  # let every worker finish starting (with WORKERS > 1 the first answer comes from one of them)

HEADERS=()
[[ -n "${GZIP:-}" ]] && HEADERS+=(-H "Accept-Encoding: gzip")
[[ -n "${TOKEN:-}" ]] && HEADERS+=(-H "Authorization: Bearer $TOKEN")

bench_machine
echo "catalog: $CATALOG_JSON"
echo "server:  $BASE (workers: $WORKERS)  load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION after a $WARMUP warm-up${GZIP:+, gzip}${TOKEN:+, bearer token}"
printf '%-22s %10s %9s %9s %9s %8s  %s\n' endpoint "req/s" "p50 ms" "p99 ms" "max ms" "errors" path

# name | path | target req/s (0 = none)
ENDPOINTS=(
  "product_list|/api/products/?page=1&page_size=20|920"
  "product_list_category|/api/products/?page=1&page_size=20&category=$ROOT_ID|0"
  "product_list_leaf|/api/products/?page=1&page_size=20&category=$LEAF_ID|0"
  "product_list_search|/api/products/?page=1&page_size=20&search=blender|0"
  "category_list|/api/products/categories/|1400"
  "average_price|/api/products/categories/$ROOT_ID/average-price/|2860"
  "average_price_leaf|/api/products/categories/$LEAF_ID/average-price/|0"
)
for entry in "${ENDPOINTS[@]}"; do
  IFS='|' read -r name path target <<<"$entry"
  status=000
  for _ in 1 2 3 4 5; do
    status="$(curl -s -o /dev/null -w '%{http_code}' "${HEADERS[@]}" "$BASE$path" || true)"
    [[ "$status" == "200" ]] && break
    sleep 1
  done
  if [[ "$status" != "200" ]]; then
    echo "$name: $path answered $status, skipped" >&2
    continue
  fi
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${HEADERS[@]}" "$BASE$path" >/dev/null
  line="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s -s bench/wrk_report.lua "${HEADERS[@]}" \
    "$BASE$path" | sed -n 's/^WRK_JSON //p')"
  "$PY" - "$name" "$path" "$target" "$line" "$WORKERS" "$RESULTS" <<'EOF'
import json, sys
name, path, target, line, workers, results = sys.argv[1:]
r = json.loads(line)
errors = r["non_2xx"] + r["socket_errors"]
verdict = ""
if int(target):
    verdict = f"  target >= {target}: {'MET' if r['rps'] >= int(target) else 'missed'}"
print(f"{name:<22} {r['rps']:>10.1f} {r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} {r['max_ms']:>9.2f} {errors:>8}  {path}{verdict}")
if results:
    with open(results, "a") as out:
        out.write(json.dumps({"endpoint": name, "path": path, "workers": int(workers), "target_rps": int(target), **r}) + "\n")
EOF
done
