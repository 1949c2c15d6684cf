-- POST the token endpoint: grant_type=client_credentials, the client authenticated with
-- private_key_jwt (RFC 7523) and the token bound to a DPoP key (RFC 9449).
--   BENCH_PAIRS  a file of lines "<client assertion> <DPoP proof>", each used once (both
--                carry a jti the server accepts once); thread k of n takes lines k, k+n, ...
-- A response counts as bad unless it is a 200 carrying a DPoP access token; a request sent
-- with the pool empty carries a spent pair (refused: counted as "empty").
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"

local PREFIX = "grant_type=client_credentials&scope=api"
  .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
  .. "&client_assertion="
local pool, head, tail = {}, 1, 0
local last = nil

function init(args)
  bench.seed()
  local path = assert(os.getenv("BENCH_PAIRS"), "BENCH_PAIRS")
  local i = 0
  for line in io.lines(path) do
    if line ~= "" then
      if i % bench.threads == id - 1 then
        local assertion, proof = string.match(line, "^(%S+) (%S+)$")
        tail = tail + 1
        pool[tail] = {assertion, proof}
      end
      i = i + 1
    end
  end
end

function request()
  local pair = last
  if head <= tail then
    pair = pool[head]
    pool[head] = nil
    head = head + 1
    last = pair
  else
    empty = empty + 1
  end
  if pair == nil then
    pair = {"none", "none"}
  end
  -- wrk.format's headers replace wrk.headers: carry them over, with this request's proof.
  local headers = {["DPoP"] = pair[2]}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  return wrk.format(nil, nil, headers, PREFIX .. pair[1])
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"token_type"%s*:%s*"DPoP"') then
    bench.bad(status, body)
  end
end
