-- wrk script: POST /api/v1/reservations/ (or GET /api/v1/me/) as random seeded players.
-- args: <tokens file> <house id> <mode: reserve|me>
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(args[1]) do
    table.insert(tokens, line)
  end
  house = args[2]
  mode = args[3]
  counter = 0
  n2xx, n409, nother = 0, 0, 0
  math.randomseed(os.time() * 1000 + id)
  prefix = string.format("%d-%d-%d", id, os.time(), math.random(1000000000))
  body = '{"house_id": ' .. house .. ', "quantity": 1}'
end

function request()
  counter = counter + 1
  local token = tokens[math.random(#tokens)]
  if mode == "me" then
    return wrk.format("GET", "/api/v1/me/", { ["Authorization"] = "Token " .. token })
  end
  return wrk.format("POST", "/api/v1/reservations/", {
    ["Authorization"] = "Token " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    n2xx = n2xx + 1
  elseif status == 409 then
    n409 = n409 + 1
  else
    nother = nother + 1
  end
end

function done(summary, latency, requests)
  local ok, conflict, other = 0, 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("n2xx")
    conflict = conflict + thread:get("n409")
    other = other + thread:get("nother")
  end
  io.write(string.format(
    "RESULT ok=%d conflict=%d other=%d errors=%d duration_us=%d p50_us=%d p99_us=%d\n",
    ok, conflict, other,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
