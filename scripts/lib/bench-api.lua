-- wrk script for `scripts/bench api`. LEDGERLINE_BENCH_MODE picks the request:
--   healthz    GET /healthz (the HTTP stack alone: the baseline)
--   append     POST one event to one of 64 streams (admin token in LEDGERLINE_BENCH_TOKEN)
--   inclusion  GET an inclusion proof of a random leaf in the tree of LEDGERLINE_BENCH_SIZE
--   tile       GET a random full level-0 tile (C2SP tlog-tiles) of the tree of LEDGERLINE_BENCH_SIZE
-- done() prints one machine-readable line that the script turns into the table.

local mode = os.getenv("LEDGERLINE_BENCH_MODE") or "healthz"
local token = os.getenv("LEDGERLINE_BENCH_TOKEN") or ""
local size = tonumber(os.getenv("LEDGERLINE_BENCH_SIZE") or "1")
local counter = 0

function setup(thread)
  thread:set("id", math.random(1, 1000000))
end

function init(args)
  math.randomseed(id)
end

-- The C2SP tlog-tiles path of full tile n at level 0: n in 3-digit groups,
-- "x" before all but the last (1234067 -> x001/x234/067).
local function tile_path(n)
  local path = string.format("%03d", n % 1000)
  n = math.floor(n / 1000)
  while n > 0 do
    path = string.format("x%03d/", n % 1000) .. path
    n = math.floor(n / 1000)
  end
  return "/tlog/tile/0/" .. path
end

function request()
  counter = counter + 1
  if mode == "append" then
    local body = '{"type":"bench.tick","data":{"n":' .. counter .. '}}'
    return wrk.format("POST", "/v1/streams/bench-" .. (counter % 64) .. "/events", {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token,
    }, body)
  elseif mode == "inclusion" then
    local seq = math.random(0, size - 1)
    return wrk.format("GET", "/v1/proofs/inclusion?seq=" .. seq .. "&size=" .. size)
  elseif mode == "tile" then
    local full_tiles = math.max(math.floor(size / 256), 1)
    return wrk.format("GET", tile_path(math.random(0, full_tiles - 1)))
  end
  return wrk.format("GET", "/healthz")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d non2xx=%d socket_errors=%d duration_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
