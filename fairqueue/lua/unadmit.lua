--[[ unadmit.lua: take back an admission whose submission failed after admit.lua.

The task leaves the user's window (and its charge, with PQH_CHARGE=time), active set and the
admitting set. Its Idempotency-Key, if it still names this task (pending or done), is freed, or,
when the key turned out to belong to an earlier task (PostgreSQL's unique constraint said so
after Redis lost the key), names that task as done.

KEYS[1]  {P}:win:<user>
KEYS[2]  {P}:act:<user>
KEYS[3]  {P}:q:admitting
KEYS[4]  {P}:wc:<user>
KEYS[5]  (only with a key) {P}:idem:<user>:<Idempotency-Key>
ARGV[1]  JSON object: task_id; replay_id (optional: the earlier task the key belongs to);
         idempotency_seconds (how long the key then names it)

Returns 1.
]]
--- @include "window"

local a = cjson.decode(ARGV[1])
window_recharge(KEYS[1], KEYS[4], a.task_id, nil)
redis.call('ZREM', KEYS[1], a.task_id)
redis.call('ZREM', KEYS[2], a.task_id)
redis.call('ZREM', KEYS[3], a.task_id)
local idem = KEYS[5]
if idem then
  if a.replay_id then
    redis.call('SET', idem, 'd|' .. a.replay_id, 'EX', math.ceil(a.idempotency_seconds))
  else
    local v = redis.call('GET', idem)
    if v and string.match(v, '^%a|([^|]+)') == a.task_id then redis.call('DEL', idem) end
  end
end
return 1
