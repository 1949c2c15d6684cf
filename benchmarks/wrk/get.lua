-- GET the URL given to wrk (discovery, JWKS). A response counts as bad unless it is a 200
-- whose body contains BENCH_EXPECT (default: nothing more than the status is checked).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local expect = os.getenv("BENCH_EXPECT") or ""
wrk.headers["Accept"] = "application/json"

function init(args)
  bench.seed()
end

function response(status, headers, body)
  if status ~= 200 or (expect ~= "" and not string.find(body, expect, 1, true)) then
    bench.bad(status, body)
  end
end
