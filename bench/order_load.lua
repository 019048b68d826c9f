-- wrk script for the order-creation benchmark: POST /api/orders/ with a bearer token, counts every
-- response by status code (across all wrk threads) and prints one JSON line with throughput, latency
-- percentiles (milliseconds) and the status counts.
--
--   ORDER_BODY='{"items": [{"product_id": 1, "quantity": 1}]}' ORDER_TOKEN=demo-customer-token-999 \
--     wrk -t2 -c32 -d10s -s bench/order_load.lua http://127.0.0.1:PORT/api/orders/
--
-- Output line: WRK_JSON {"requests": ..., "rps": ..., "p50_ms": ..., "p99_ms": ..., "status": {"201": n, ...},
--                        "non_2xx": n, "socket_errors": n, ...}

wrk.method = "POST"
wrk.body = os.getenv("ORDER_BODY") or '{"items": [{"product_id": 1, "quantity": 1}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("ORDER_TOKEN") or "demo-customer-token-999")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local counted = thread:get("statuses")
    if counted then
      for status, n in pairs(counted) do
        totals[status] = (totals[status] or 0) + n
      end
    end
  end
  local parts, non_2xx, responses = {}, 0, 0
  local codes = {}
  for status in pairs(totals) do table.insert(codes, status) end
  table.sort(codes)
  for _, status in ipairs(codes) do
    local n = totals[status]
    table.insert(parts, string.format('"%d": %d', status, n))
    responses = responses + n
    if status < 200 or status > 299 then non_2xx = non_2xx + n end
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "responses": %d, "seconds": %.2f, "rps": %.1f, "p50_ms": %.2f, ' ..
    '"p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, "status": {%s}, "non_2xx": %d, ' ..
    '"socket_errors": %d, "timeouts": %d}\n',
    summary.requests, responses, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, table.concat(parts, ", "), non_2xx,
    e.connect + e.read + e.write + e.timeout, e.timeout))
end
