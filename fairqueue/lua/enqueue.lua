--[[ enqueue.lua: add accepted tasks to the fair queue, then pick what may be released now.

One round trip per submission. A task already in the queue is left as it is, so a recovery
sweep may offer any task again.

KEYS[1 .. 10+9L]  the fair queue's keys, in the order of includes/queue.lua (L = levels)
KEYS[11+9L ..]    the Idempotency-Key keys {P}:idem:<user>:<key> of the tasks that have one
ARGV[1]     JSON object:
  now           Unix seconds
  levels        number of levels L
  max_wait      the aging bound M, seconds
  buffer        PQH_RELEASE_BUFFER
  recover_after seconds after which an unconfirmed pick is handed out again
  max_picks     how many releases this call may pick
  position      true: also return the queue position of tasks[1]
  broker_lengths (only when the broker is another Redis) each level list's length, level 0
                first: see includes/queue.lua
  tasks         [{id, seq, user, level, weight, cost, submitted, team?, tweight?, idem?,
                idem_ttl?}, ...]
                team: the user's team ("" for none; absent: as the queue holds the user now),
                tweight its weight; in a team, weight is the user's among its members.
                cost: 1, or the estimated seconds with PQH_CHARGE=time. A task that ends a
                submission leaves {P}:q:admitting (see admit.lua); idem, the index in KEYS
                of its Idempotency-Key's key, then names it as done for idem_ttl seconds.

Returns {position of tasks[1] or -1, number of tasks added, {{task id, target level,
aged "0"/"1", "picked"/"recovered"}, ...}}.
]]
--- @include "queue"

local a = cjson.decode(ARGV[1])
local k = queue_keys(a.levels, a.broker_lengths)
local cutoff = a.now - a.max_wait
local added = 0
for _, t in ipairs(a.tasks) do
  if add(k, t, cutoff) then added = added + 1 end
  redis.call('ZREM', k.admitting, t.id)
  if t.idem and t.idem_ttl > 0 then
    redis.call('SET', KEYS[t.idem], 'd|' .. t.id, 'EX', math.ceil(t.idem_ttl))
  end
end
a.age_limit = 16 + 2 * #a.tasks
local releases = pick(k, a)
local pos = -1
if a.position and a.tasks[1] then
  local t = a.tasks[1]
  pos = position(k, position_context(k, a.levels, cutoff), t.id, t.seq, t.level)
end
return {pos, added, releases}
