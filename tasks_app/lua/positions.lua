--[[ positions.lua: the queue positions of many tasks in one round trip.

Each position is exact for the state it reads: the number of tasks that start before the task
if no more tasks arrive and no task reaches the aging bound in the meantime (see position() in
includes/queue.lua and docs/fairness.md). Tasks that have waited the bound are first moved to
the aged set, as a pick would. O(log n) per task, plus a constant.

KEYS[1..L]  the broker's list of each level's Celery queue, level 0 first (L = levels)
ARGV[1]     JSON object:
  prefix, now, levels, max_wait   as in enqueue.lua
  tasks         [[task id, queue number, level], ...]

Returns one position per task, in order; -1 for a task the fair queue does not hold.
]]
--- @include "queue"

local a = cjson.decode(ARGV[1])
local k = queue_keys(a.prefix, a.levels)
local cutoff = a.now - a.max_wait
age_out(k, a.levels, cutoff, 16 + 2 * #a.tasks)
local c = position_context(k, a.levels, KEYS, cutoff)
local out = {}
for i, t in ipairs(a.tasks) do out[i] = position(k, c, t[1], t[2], t[3]) end
return out
