--[[ admit.lua: decide a submission in one atomic step, before anything is recorded.

In order: an Idempotency-Key seen before answers with its task (or says it is in progress);
then the user's cap and the global bound may refuse; otherwise the submission is counted in the
user's window, joins the user's active set and the admitting set, and its key (if any) is taken.
A refusal changes nothing. Atomic, so N concurrent submissions never pass a cap together.

KEYS[1]        <prefix>:win:<user>   the user's window (zset: task id -> submit time)
KEYS[2]        <prefix>:act:<user>   the user's active tasks, queued or running (zset: task id
                                     -> admit time); a task leaves it when it ends
KEYS[3]        <prefix>:q:admitting  admitted, not yet in the fair queue (zset: task id -> time)
KEYS[4]        <prefix>:q:aged
KEYS[5]        <prefix>:q:rel
KEYS[6..5+L]   <prefix>:q:lvl:<l>, level 0 first
KEYS[6+L..5+2L] the broker's list of each level's Celery queue, level 0 first
KEYS[6+2L]     (only with a key) <prefix>:idem:<user>:<Idempotency-Key>
ARGV[1]        JSON object:
  task_id             the new task's id
  now                 Unix seconds
  levels              number of levels L
  window_seconds      PQH_WINDOW_SECONDS
  user_cap            the user's cap on active tasks
  max_queued          PQH_MAX_QUEUED: waiting, admitting and released-not-started, in all
  idempotency_seconds how long a key names its task (PQH_IDEMPOTENCY_SECONDS)
  abandon_after       an admission not queued within this long was abandoned (its web process
                      died); it stops counting against the global bound and its key is free

Returns one of {"admitted", count_before}, {"replay", task id}, {"in_progress", task id},
{"user_cap", active}, {"queue_full", queued}.
]]
--- @include "window"

local a = cjson.decode(ARGV[1])
local win, act, admitting = KEYS[1], KEYS[2], KEYS[3]
local idem = KEYS[6 + 2 * a.levels]

if idem then
  local v = redis.call('GET', idem)
  if v then
    local state, id, since = string.match(v, '^(%a)|([^|]+)|?(.*)$')
    if state == 'd' then return {'replay', id} end
    if a.now - (tonumber(since) or 0) < a.abandon_after then return {'in_progress', id} end
  end
end

local active = redis.call('ZCARD', act)
if active >= a.user_cap then return {'user_cap', active} end

redis.call('ZREMRANGEBYSCORE', admitting, '-inf', a.now - a.abandon_after)
local queued = redis.call('ZCARD', admitting) + redis.call('ZCARD', KEYS[4])
  + redis.call('ZCARD', KEYS[5])
for i = 6, 5 + a.levels do queued = queued + redis.call('ZCARD', KEYS[i]) end
for i = 6 + a.levels, 5 + 2 * a.levels do queued = queued + redis.call('LLEN', KEYS[i]) end
if queued >= a.max_queued then return {'queue_full', queued} end

local count = window_count(win, a.now, a.window_seconds)
window_add(win, a.now, a.window_seconds, a.task_id)
redis.call('ZADD', act, math.floor(a.now), a.task_id)
redis.call('ZADD', admitting, a.now, a.task_id)
if idem then
  redis.call('SET', idem, 'p|' .. a.task_id .. '|' .. string.format('%.17g', a.now),
    'EX', math.ceil(a.idempotency_seconds))
end
return {'admitted', count}
