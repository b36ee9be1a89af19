--[[ positions.lua: the queue positions of many tasks in one round trip.

Each position is exact for the state it reads: the number of tasks that start before the task
if no more tasks arrive and no task reaches the aging bound in the meantime, released tasks not
yet started included (see position() in includes/queue.lua and docs/fairness.md). Tasks that
have waited the bound are first moved to the aged set, as a pick would. O(log n) per task, plus
a constant: the set sizes and the released tasks not yet started (at most PQH_RELEASE_BUFFER
per level, plus unconfirmed picks), read once.

KEYS[1 .. 10+9L]  the fair queue's keys, in the order of includes/queue.lua (L = levels)
ARGV[1]     JSON object:
  now, levels, max_wait, broker_lengths   as in enqueue.lua
  tasks         [[task id, queue number, level], ...]

Returns {position, aged} per task, in order: position -1 for a task the fair queue does not
hold; aged 1 if aging has lifted the task (it waits in the aged set, or was released aged).
]]
--- @include "queue"

local a = cjson.decode(ARGV[1])
local k = queue_keys(a.levels, a.broker_lengths)
local cutoff = a.now - a.max_wait
age_out(k, a.levels, cutoff, 16 + 2 * #a.tasks)
local c = position_context(k, a.levels, cutoff)
local out = {}
for i, t in ipairs(a.tasks) do out[i] = {position(k, c, t[1], t[2], t[3])} end
return out
