-- POST the token endpoint: grant_type=client_credentials, HTTP Basic client authentication.
--   BENCH_BASIC  base64 of "client_id:client_secret"
--   BENCH_BODY   the form (default grant_type=client_credentials&scope=api)
-- A response counts as bad unless it is a 200 carrying an access_token.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "grant_type=client_credentials&scope=api"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. assert(os.getenv("BENCH_BASIC"), "BENCH_BASIC")

function init(args)
  bench.seed()
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"access_token"', 1, true) then
    bench.bad(status, body)
  end
end
