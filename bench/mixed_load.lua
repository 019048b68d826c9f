-- wrk script of the mixed-workload benchmark (bench/mixed_load.sh): browse / search / order / cancel.
--
--   MIX_DIR=/tmp/dir MIX_SAMPLES=/tmp/dir/samples.txt \
--     wrk -t32 -c32 -d20s -s bench/mixed_load.lua http://127.0.0.1:PORT
--
-- Run it with as many threads as connections (-tN -cN): each wrk thread then has exactly one connection,
-- so request() and response() strictly alternate and each response is known to answer the request the
-- thread built last. That gives per-class status codes and per-class latency, which wrk's own statistics
-- (one histogram for everything) cannot: the latency of each request is taken with clock_gettime
-- (CLOCK_MONOTONIC, through LuaJIT's FFI) in request() and response().
--
-- Environment:
--   MIX_DIR      directory written by bench/mixed_setup.py: tokens.txt, products.txt, hot.txt,
--                categories.txt, words.txt (required)
--   MIX          weights, default "browse=70,search=15,order=10,cancel=5"
--   MIX_HOT      share of order lines that go to the low-stock products of hot.txt (default 0.1)
--   MIX_SAMPLES  file done() appends one line per response to: "<kind> <status> <latency_us>" (and
--                "<kind>_unanswered 0 <us>" for a request whose connection broke before the answer)
--   MIX_SEED     random seed (default 8); thread n uses seed + n
--
-- Classes and kinds (the kind is the first field of each sample):
--   browse: product_page, product_detail, category_list, category_detail, category_products (anonymous)
--   search: search (product list with search / category / price range / in_stock / ordering, anonymous)
--   order:  order (POST /api/orders/, 1-3 lines, one of the bench customers' tokens per thread); a 400 that is not
--           a stock-out (`/problems/insufficient-stock`) is recorded as order_invalid
--   cancel: cancel (POST /api/orders/{id}/cancel/ of an order this thread placed); while the thread has
--           no order of its own to cancel it places one instead (counted as an order)
-- Prints one line: WRK_JSON {...} with wrk's aggregate figures and the status counts per kind.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } mixed_timespec;
int clock_gettime(int clk_id, mixed_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("mixed_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000000 + math.floor(tonumber(timespec.tv_nsec) / 1000)
end

local function read_lines(name)
  local dir = os.getenv("MIX_DIR") or error("MIX_DIR is not set")
  local file = io.open(dir .. "/" .. name, "r") or error("cannot read " .. dir .. "/" .. name)
  local lines = {}
  for line in file:lines() do
    if line ~= "" then table.insert(lines, line) end
  end
  file:close()
  return lines
end

local function parse_mix(text)
  local weights, total = {}, 0
  for name, weight in string.gmatch(text, "(%a+)=(%d+)") do
    weights[name] = tonumber(weight)
    total = total + tonumber(weight)
  end
  return weights, total
end

-- ---- main state: collect the threads ----------------------------------------------------------------

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

-- ---- per thread --------------------------------------------------------------------------------------

local ready = false
local token, products, hot, categories, words
local weights, total_weight, hot_share
local own_orders = {}
local pending_kind, pending_start
samples = {}
lost = 0
local built = 0

function init(args)
  local tokens = read_lines("tokens.txt")
  token = tokens[((thread_no or 1) - 1) % #tokens + 1]
  products = read_lines("products.txt")
  hot = read_lines("hot.txt")
  categories = read_lines("categories.txt")
  words = read_lines("words.txt")
  weights, total_weight = parse_mix(os.getenv("MIX") or "browse=70,search=15,order=10,cancel=5")
  hot_share = tonumber(os.getenv("MIX_HOT") or "0.1")
  math.randomseed(tonumber(os.getenv("MIX_SEED") or "8") * 1000 + (thread_no or 1))
  ready = true
end

local function pick(list)
  return list[math.random(#list)]
end

local function get(path)
  return wrk.format("GET", path)
end

local function authorised(method, path, body)
  local headers = {["Authorization"] = "Bearer " .. token}
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, path, headers, body)
end

local function browse()
  local r = math.random(100)
  if r <= 30 then
    return "product_page", get("/api/products/?page=" .. math.random(20) .. "&page_size=20")
  elseif r <= 65 then
    return "product_detail", get("/api/products/" .. pick(products) .. "/")
  elseif r <= 75 then
    return "category_list", get("/api/products/categories/")
  elseif r <= 85 then
    return "category_detail", get("/api/products/categories/" .. pick(categories) .. "/")
  end
  return "category_products", get("/api/products/categories/" .. pick(categories) .. "/products/?page_size=20")
end

local ORDERINGS = {"name", "-name", "price", "-price", "created_at", "-created_at"}

local function search()
  local query = {"search=" .. pick(words), "page_size=20"}
  if math.random() < 0.4 then
    local low = math.random(0, 8) * 100
    table.insert(query, "min_price=" .. low)
    table.insert(query, "max_price=" .. (low + math.random(1, 3) * 100))
  end
  if math.random() < 0.3 then table.insert(query, "in_stock=true") end
  if math.random() < 0.3 then table.insert(query, "category=" .. pick(categories)) end
  if math.random() < 0.5 then table.insert(query, "ordering=" .. pick(ORDERINGS)) end
  return "search", get("/api/products/?" .. table.concat(query, "&"))
end

local function order()
  local lines, used = {}, {}
  for _ = 1, math.random(3) do
    local pid = (math.random() < hot_share) and pick(hot) or pick(products)
    if not used[pid] then
      used[pid] = true
      table.insert(lines, string.format('{"product_id": %s, "quantity": %d}', pid, math.random(2)))
    end
  end
  local body = '{"notes": "mixed bench", "items": [' .. table.concat(lines, ", ") .. "]}"
  return "order", authorised("POST", "/api/orders/", body)
end

local function cancel()
  if #own_orders == 0 then return order() end
  local i = math.random(#own_orders)
  local order_id = own_orders[i]
  own_orders[i] = own_orders[#own_orders]
  own_orders[#own_orders] = nil
  return "cancel", authorised("POST", "/api/orders/" .. order_id .. "/cancel/")
end

local BUILDERS = {browse = browse, search = search, order = order, cancel = cancel}

function request()
  if not ready then  -- wrk calls request() once in its main state to check the script
    return get("/api/health/")
  end
  built = built + 1
  -- wrk 4.1 checks the script by calling request() once in the first thread's state before that thread
  -- starts, and never sends that request. Any other request still waiting for its answer means the
  -- connection broke and wrk asks again: keep a trace of it.
  if pending_kind and not (built == 2 and thread_no == 1) then
    lost = lost + 1
    samples[#samples + 1] = string.format("%s_unanswered 0 %d", pending_kind, now_us() - pending_start)
  end
  local r, kind, req = math.random() * total_weight, nil, nil
  for _, class in ipairs({"browse", "search", "order", "cancel"}) do
    local weight = weights[class] or 0
    if r < weight then
      kind, req = BUILDERS[class]()
      break
    end
    r = r - weight
  end
  if not kind then kind, req = browse() end
  pending_kind, pending_start = kind, now_us()
  return req
end

function response(status, headers, body)
  local elapsed = now_us() - pending_start
  local kind = pending_kind
  if kind == "order" and status == 400 and not string.find(body or "", "insufficient-stock", 1, true) then
    kind = "order_invalid"  -- a 400 that is not a stock-out: counted apart, so the report flags it
  end
  samples[#samples + 1] = string.format("%s %d %d", kind, status, elapsed)
  if pending_kind == "order" and status == 201 then
    local location = headers["location"] or headers["Location"] or ""
    local order_id = string.match(location, "/api/orders/(%d+)/")
    if order_id then table.insert(own_orders, order_id) end
  end
  pending_kind = nil
end

-- ---- main state again: the report --------------------------------------------------------------------

function done(summary, latency, requests)
  local out = os.getenv("MIX_SAMPLES")
  local file = out and io.open(out, "a")
  local counts, lost_total = {}, 0
  for _, thread in ipairs(threads) do
    local lines = thread:get("samples") or {}
    for _, line in ipairs(lines) do
      if file then file:write(line, "\n") end
      local kind, status = string.match(line, "^(%S+) (%d+)")
      local key = kind .. " " .. status
      counts[key] = (counts[key] or 0) + 1
    end
    lost_total = lost_total + (thread:get("lost") or 0)
  end
  if file then file:close() end
  local keys = {}
  for key in pairs(counts) do table.insert(keys, key) end
  table.sort(keys)
  local parts = {}
  for _, key in ipairs(keys) do table.insert(parts, string.format('"%s": %d', key, counts[key])) end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, ' ..
    '"counts": {%s}, "lost": %d, "socket_errors": %d, "timeouts": %d}\n',
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, table.concat(parts, ", "), lost_total,
    e.connect + e.read + e.write + e.timeout, e.timeout))
end
