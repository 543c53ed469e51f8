-- wrk script: POSTs one JSON body over and over, with an optional bearer token.
--   wrk ... -s bench/post.lua URL -- BODY_FILE [TOKEN]
-- At the end it prints one line, "BENCH_JSON {...}", that bench/run.py reads: answers,
-- latency percentiles (microseconds), socket errors, answers by HTTP status and how many
-- answers carried a GraphQL "errors" list.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local request_text

function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
  if args[2] ~= nil and args[2] ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. args[2]
  end
  request_text = wrk.format()
  statuses = {}
  graphql_errors = 0
end

function request()
  return request_text
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if body ~= nil and string.find(body, '"errors"', 1, true) then
    graphql_errors = graphql_errors + 1
  end
end

function done(summary, latency, requests)
  local by_status = {}
  local with_errors = 0
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses") or {}
    for status, n in pairs(counts) do
      by_status[status] = (by_status[status] or 0) + n
    end
    with_errors = with_errors + (thread:get("graphql_errors") or 0)
  end
  local parts = {}
  for status, n in pairs(by_status) do
    table.insert(parts, string.format('"%s":%d', status, n))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"answers":%d,"duration_us":%d,"bytes":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,'
      .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,'
      .. '"non_2xx":%d,"graphql_errors":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean,
    errors.connect, errors.read, errors.write, errors.timeout, errors.status,
    with_errors, table.concat(parts, ",")
  ))
end
