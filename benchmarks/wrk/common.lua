-- Shared by the benchmark's wrk scripts (benchmarks/run.py sets the environment):
--
--   BENCH_THREADS   wrk's -t, so init() can take its share of a token file
--   BENCH_CLOSE=1   send "Connection: close": the server answers and closes, and wrk opens a
--                   new connection for the next request (run.py checks that it does, with the
--                   kernel's count of accepted TCP connections)
--   BENCH_THINK_MS  pacing: each connection waits a random 0.5x-1.5x this many ms before each
--                   request (wrk's delay() hook); unset or 0 = closed loop, as fast as it goes
--
-- done() prints one line "BENCH_JSON {...}": requests, duration, wrk's error counts, latency
-- percentiles (us) and the per-thread counts of the script's own checks (bad responses,
-- an empty token pool), with the first bad response as a sample.

bench = {
  close = os.getenv("BENCH_CLOSE") == "1",
  think_ms = tonumber(os.getenv("BENCH_THINK_MS") or "0") or 0,
  threads = tonumber(os.getenv("BENCH_THREADS") or "1") or 1,
}

if bench.close then
  wrk.headers["Connection"] = "close"
end

-- per-thread counters (globals, so done() can read them with thread:get)
bad = 0      -- responses that were not what the case expects (status or body)
empty = 0    -- refresh: requests sent with no token left in the pool
sample = ""  -- the first bad response, cut short

local threads = {}
local next_id = 1

function setup(thread)  -- runs in the main Lua state, once per thread, before its init()
  thread:set("id", next_id)
  threads[next_id] = thread
  next_id = next_id + 1
end

function bench.seed()
  math.randomseed(os.time() * 1000 + (id or 0))
end

if bench.think_ms > 0 then
  function delay()
    -- whole milliseconds (wrk's timer), rounded so that the mean stays think_ms
    return math.floor(bench.think_ms * (0.5 + math.random()) + 0.5)
  end
end

function bench.bad(status, body)
  bad = bad + 1
  if sample == "" then
    sample = tostring(status) .. " " .. string.sub(body or "", 1, 300)
  end
end

local function quote(s)
  s = string.gsub(tostring(s), '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local per = {}
  local total_bad, total_empty, first = 0, 0, ""
  for i, t in ipairs(threads) do
    local b, e, s = t:get("bad") or 0, t:get("empty") or 0, t:get("sample") or ""
    total_bad, total_empty = total_bad + b, total_empty + e
    if first == "" then first = s end
    per[#per + 1] = string.format('{"id":%d,"bad":%d,"empty":%d,"pool":%d}', i, b, e,
                                  t:get("pool_left") or -1)
  end
  local e = summary.errors
  print(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"bad":%d,"empty":%d,"sample":%s,"threads":[%s],' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"mean":%.1f,"max":%d}}',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    total_bad, total_empty, quote(first), table.concat(per, ","),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max))
end
