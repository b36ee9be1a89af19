-- wrk script for bench.api (run by bench/api/driver.py): requests spread over many users' tokens
-- and their task ids.
--
--   wrk -t2 -c32 -d8s -s bench/wrk/api.lua http://127.0.0.1:8105 -- <mode> <targets file>
--
-- mode:          post-task   POST /task            {"x": ...} with the user's token
--                post-api    POST /api/tasks/      {"x": ...} with the user's token
--                get-result  GET  /result/<id>     a task of that user
--                get-detail  GET  /api/tasks/<id>/ a task of that user
--                mix         the four above in turn (or those named in a third argument,
--                            comma-separated: "mix <file> post-task,get-result")
--                orig-post   the original's POST /task {"user_id": <name>, "x": ...}, no token
--                orig-get    the original's GET /result/<id>
-- targets file:  one "<token or user name> <task id or ->" per line.
-- done() prints one line "WRKJSON {...}" that bench/api/driver.py reads: requests, errors and
-- latency percentiles in microseconds (errors.status counts responses with status >= 400).

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local mode, targets, i, n = nil, {}, 0, 0
local routes = { "post-task", "post-api", "get-result", "get-detail" }
local body = '{"x": {"prompt": "bench"}}'

function init(args)
  mode = args[1]
  if args[3] then
    routes = {}
    for kind in args[3]:gmatch("[^,]+") do table.insert(routes, kind) end
  end
  for line in io.lines(args[2]) do
    local who, id = line:match("^(%S+)%s+(%S+)")
    if who then table.insert(targets, { who, id }) end
  end
  -- Threads start at different users, so connections do not move in step.
  i = (thread_index * 7919) % #targets
end

local function one(kind, t)
  if kind == "post-task" or kind == "post-api" then
    local path = kind == "post-task" and "/task" or "/api/tasks/"
    return wrk.format("POST", path,
      { ["Authorization"] = "Token " .. t[1], ["Content-Type"] = "application/json" }, body)
  elseif kind == "get-result" then
    return wrk.format("GET", "/result/" .. t[2], { ["Authorization"] = "Token " .. t[1] })
  elseif kind == "get-detail" then
    return wrk.format("GET", "/api/tasks/" .. t[2] .. "/", { ["Authorization"] = "Token " .. t[1] })
  elseif kind == "orig-post" then
    return wrk.format("POST", "/task", { ["Content-Type"] = "application/json" },
      '{"user_id": "' .. t[1] .. '", "x": "foo"}')
  elseif kind == "orig-get" then
    return wrk.format("GET", "/result/" .. t[2])
  end
  error("unknown mode " .. tostring(kind))
end

function request()
  i = i % #targets + 1
  n = n + 1
  local kind = mode
  if mode == "mix" then kind = routes[(n - 1) % #routes + 1] end
  return one(kind, targets[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
