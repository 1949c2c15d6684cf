-- POST the token endpoint: grant_type=refresh_token with rotation, HTTP Basic client auth.
--   BENCH_BASIC   base64 of "client_id:client_secret"
--   BENCH_TOKENS  a file of fresh refresh tokens, one a line; thread k of n takes lines
--                 k, k+n, k+2n, ... (setup() numbers the threads)
-- Each request takes the oldest token of its thread's pool; a 200 response's new
-- refresh_token goes back at the end of the pool (the used one is spent: rotation). A
-- response that is not a 200 with a refresh_token is bad and its token is lost; a request
-- sent with the pool empty carries a dummy token (and is counted as "empty").
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. assert(os.getenv("BENCH_BASIC"), "BENCH_BASIC")

local pool, head, tail = {}, 1, 0
pool_left = 0

function init(args)
  bench.seed()
  local path = assert(os.getenv("BENCH_TOKENS"), "BENCH_TOKENS")
  local i = 0
  for line in io.lines(path) do
    if line ~= "" then
      if i % bench.threads == id - 1 then
        tail = tail + 1
        pool[tail] = line
      end
      i = i + 1
    end
  end
  pool_left = tail
end

function request()
  local token = "no-token-left"
  if head <= tail then
    token = pool[head]
    pool[head] = nil
    head = head + 1
  else
    empty = empty + 1
  end
  pool_left = tail - head + 1
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local new = status == 200 and string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
  if new then
    tail = tail + 1
    pool[tail] = new
    pool_left = tail - head + 1
  else
    bench.bad(status, body)
  end
end
