--[[ window_usage.lua: a user's window as it stands, without recording a submission.

KEYS[1]  {P}:win:<user>   the user's window (zset: task id -> submit time)
KEYS[2]  {P}:wc:<user>    the charges of its submissions (hash; time mode)
KEYS[3]  {P}:act:<user>   optional: the user's tasks queued or running (zset), as its cap counts
ARGV[1]  JSON object:
  now      Unix seconds
  seconds  the window's length T (PQH_WINDOW_SECONDS)
  charge   "tasks" or "time"

Returns {count, usage (string: the count, or seconds charged with time), {submit time, charge,
...} of each submission in the window, oldest first (charge 1 in tasks mode)}, and with KEYS[3]
a fourth: how many tasks the user has queued or running.
]]
--- @include "window"

local a = cjson.decode(ARGV[1])
local count, usage
if a.charge == 'time' then
  count, usage = window_usage(KEYS[1], KEYS[2], a.now, a.seconds)
else
  count = window_count(KEYS[1], a.now, a.seconds)
  usage = count
end
local rows = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  local c = '1'
  if a.charge == 'time' then c = redis.call('HGET', KEYS[2], rows[i]) or '0' end
  table.insert(out, rows[i + 1])
  table.insert(out, c)
end
local answer = {count, string.format('%.17g', usage), out}
if KEYS[3] then table.insert(answer, redis.call('ZCARD', KEYS[3])) end
return answer
