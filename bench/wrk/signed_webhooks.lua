-- Signed Twilio webhooks for wrk: POST form bodies whose X-Twilio-Signature was computed
-- beforehand (HMAC-SHA1 over URL + params is fixed for a fixed URL and body).
--   wrk -s signed_webhooks.lua URL -- REQUESTS_FILE
-- REQUESTS_FILE: one request per line, "<signature>\t<urlencoded body>"; each connection
-- cycles through them (distinct CallSids: the history gets inserts, not only updates).
-- done() prints one line "WRK_JSON {...}": latency percentiles and max (µs), requests over
-- 1 s, errors by kind.

local requests = {}
local counter = 0

function init(args)
  local path = wrk.path
  for line in io.lines(args[1]) do
    local signature, body = line:match("^([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = signature,
    }, body)
  end
  counter = math.random(#requests)
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function done(summary, latency, requests_stats)
  local over = 0
  for i = 1, #latency do
    local value, count = latency(i)
    if value > 1000000 then over = over + count end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"p999_us": %d, "max_us": %d, "over_1s": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, over,
    e.connect, e.read, e.write, e.status, e.timeout))
end
