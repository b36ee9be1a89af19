--[[ cancel.lua: take a cancelled task out of the fair queue, and refund its charge.

A waiting task leaves the queue and its user keeps its place: the user's later tasks at the
level move up by the task's cost / weight, as if it had never been queued (in a team: the team's
later tasks by cost / team weight, and the member's among the team by cost / its weight). The work is bounded
by the user's own tasks at the level, at most its cap (PQH_USER_MAX_ACTIVE). With refund (time
mode), the task's charge also leaves the user's window, whether it was still waiting or not.

KEYS[1 .. 10+9L]  the fair queue's keys, in the order of includes/queue.lua (L = levels)
KEYS[11+9L]   {P}:win:<user>   the user's window
KEYS[12+9L]   {P}:wc:<user>    the charges of the window's submissions
ARGV[1]  JSON object: levels, id (task id), seq (its queue number), level, refund (true/false)

Returns 1 if the task was taken out of the waiting queue, 0 if the queue does not hold it
waiting (already picked, or unknown).
]]
--- @include "queue"
--- @include "window"

local a = cjson.decode(ARGV[1])
local k = queue_keys(a.levels)
if a.refund then window_recharge(KEYS[k.own], KEYS[k.own + 1], a.id, nil) end
local m = pad(a.seq)
local info = redis.call('HGET', k.task, m)
if not info then return 0 end
local id, user, weight, cost, team = task_info(info)
if id ~= a.id then return 0 end
redis.call('HDEL', k.task, m)
if redis.call('ZREM', k.aged, m) == 1 then return 1 end
unplace(k, a.level, m, user, weight, cost, team)
if team ~= '' then team_fix(k, a.level, team) end
return 1
