--[[ cancel.lua: take a task that has not been picked out of the fair queue.

The user keeps its place: the user's later tasks at the level move up by the cancelled task's
1/weight, as if it had never been queued. The work is bounded by the user's own tasks at the
level, at most its cap (PQH_USER_MAX_ACTIVE).

ARGV[1]  JSON object: prefix, levels, id (task id), seq (its queue number), level

Returns 1 if the task was removed, 0 if the queue does not hold it waiting (already picked).
]]
--- @include "queue"

local a = cjson.decode(ARGV[1])
local k = queue_keys(a.prefix, a.levels)
local m = pad(a.seq)
local info = redis.call('HGET', k.task, m)
if not info then return 0 end
local id, user, weight = split3(info)
if id ~= a.id then return 0 end
redis.call('HDEL', k.task, m)
if redis.call('ZREM', k.aged, m) == 1 then return 1 end
local l = a.level
local list = k.wait(l, user)
local index = redis.call('LPOS', list, a.seq)
local shift = -1 / tonumber(weight)
if index then
  for _, later in ipairs(redis.call('LRANGE', list, index + 1, -1)) do
    redis.call('ZINCRBY', k.lvl[l], shift, pad(tonumber(later)))
  end
  redis.call('LREM', list, 1, a.seq)
  if redis.call('ZSCORE', k.fin[l], user) then
    redis.call('ZINCRBY', k.fin[l], shift, user)
  end
end
redis.call('ZREM', k.lvl[l], m)
redis.call('ZREM', k.age[l], m)
return 1
