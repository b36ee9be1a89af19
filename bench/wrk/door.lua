-- wrk script for bench/door: one client of the door benchmark, counting answers by status.
--
--   wrk -t1 -c8 -d20s -s bench/wrk/door.lua http://127.0.0.1:8107 -- <mode> <arg1> [<arg2>]
--
-- mode:  submit  <token>               POST /task {"x": ...} with the token
--        poll    <token> <task id>     GET /result/<task id> with the token
--        guess   <user> <password>     GET /api/usage/ with HTTP basic user:password (the same
--                                      wrong password every time)
--        guesses <user> <prefix>       the same, with a new password each request
--                                      (prefix-<thread>-<n>); n restarts with every run of wrk,
--                                      so give each run a prefix of its own: the door's gate
--                                      repeats a refusal of an identical request for up to 10 s,
--                                      and a password sent again would be refused by the gate
-- done() prints one line "WRKJSON {...}": requests, errors, the count of each status, latency
-- percentiles in microseconds.

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function base64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

local mode, arg1, arg2, n = nil, nil, nil, 0
local fixed = nil
statuses = {}

function init(args)
  mode, arg1, arg2 = args[1], args[2], args[3]
  if mode == "submit" then
    fixed = wrk.format("POST", "/task",
      { ["Authorization"] = "Token " .. arg1, ["Content-Type"] = "application/json" },
      '{"x": {"prompt": "door"}}')
  elseif mode == "poll" then
    fixed = wrk.format("GET", "/result/" .. arg2, { ["Authorization"] = "Token " .. arg1 })
  elseif mode == "guess" then
    fixed = wrk.format("GET", "/api/usage/",
      { ["Authorization"] = "Basic " .. base64(arg1 .. ":" .. arg2) })
  elseif mode ~= "guesses" then
    error("unknown mode " .. tostring(mode))
  end
end

function request()
  if fixed then return fixed end
  n = n + 1
  local password = arg2 .. "-" .. thread_index .. "-" .. n
  return wrk.format("GET", "/api/usage/",
    { ["Authorization"] = "Basic " .. base64(arg1 .. ":" .. password) })
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do total[status] = (total[status] or 0) + count end
  end
  local parts = {}
  for status, count in pairs(total) do table.insert(parts, string.format('"%d": %d', status, count)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"timeout": %d, "statuses": {%s}, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
    table.concat(parts, ", "), latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
