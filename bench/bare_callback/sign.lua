-- wrk script: POST pre-signed callbacks, each body once. Arguments: <file> <threads>.
-- Each line of <file> is "<X-Scout-Signature value>\t<body>"; thread k sends lines k+1,
-- k+1+threads, ... so no two requests share a callback_event_id until the file runs out
-- (then it wraps around and counts the repeats in "wrapped").

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local sigs, bodies = {}, {}
local position, step = 1, 1
wrapped = 0

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local tab = line:find("\t", 1, true)
    sigs[#sigs + 1] = line:sub(1, tab - 1)
    bodies[#bodies + 1] = line:sub(tab + 1)
  end
  file:close()
  step = tonumber(args[2])
  position = tid + 1
end

function request()
  local i = position
  position = position + step
  if i > #bodies then
    wrapped = wrapped + 1
    i = (i - 1) % #bodies + 1
  end
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-Scout-Signature"] = sigs[i],
    ["X-Scout-Signature-Alg"] = "HMAC-SHA256",
  }, bodies[i])
end

function done(summary, latency, requests)
  local repeats = 0
  for _, thread in ipairs(threads) do
    repeats = repeats + thread:get("wrapped")
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
      .. '"wrapped": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout, repeats,
    latency:percentile(50), latency:percentile(99), latency.max))
end
