--[[ unadmit.lua: take back an admission whose submission failed after admit.lua.

The task leaves the user's window, active set and the admitting set. Its Idempotency-Key, if it
still names this task (pending or done), is freed, or, when the key turned out to belong to an
earlier task (PostgreSQL's unique constraint said so after Redis lost the key), names that
task as done.

KEYS[1]  <prefix>:win:<user>
KEYS[2]  <prefix>:act:<user>
KEYS[3]  <prefix>:q:admitting
KEYS[4]  (only with a key) <prefix>:idem:<user>:<Idempotency-Key>
ARGV[1]  JSON object: task_id; replay_id (optional: the earlier task the key belongs to);
         idempotency_seconds (how long the key then names it)

Returns 1.
]]

local a = cjson.decode(ARGV[1])
redis.call('ZREM', KEYS[1], a.task_id)
redis.call('ZREM', KEYS[2], a.task_id)
redis.call('ZREM', KEYS[3], a.task_id)
local idem = KEYS[4]
if idem then
  if a.replay_id then
    redis.call('SET', idem, 'd|' .. a.replay_id, 'EX', math.ceil(a.idempotency_seconds))
  else
    local v = redis.call('GET', idem)
    if v and string.match(v, '^%a|([^|]+)') == a.task_id then redis.call('DEL', idem) end
  end
end
return 1
