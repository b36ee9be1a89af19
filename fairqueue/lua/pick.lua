--[[ pick.lua: pick the tasks that may be released now (a worker took one, or time passed).

KEYS[1 .. 10+9L]  the fair queue's keys, in the order of includes/queue.lua (L = levels)
ARGV[1]     JSON object:
  now, levels, max_wait, buffer, recover_after, max_picks   as in enqueue.lua
  started       the task id a worker just took from the broker, or ""
  broker_lengths (only when the broker is another Redis): as in enqueue.lua

Returns {{task id, target level, aged "0"/"1", "picked"/"recovered"}, ...}: publish each to the
Celery queue of its target level, then confirm it (ZREM {P}:q:rel).
]]
--- @include "queue"

local a = cjson.decode(ARGV[1])
a.age_limit = 16 + 2 * a.max_picks
return pick(queue_keys(a.levels, a.broker_lengths), a)
