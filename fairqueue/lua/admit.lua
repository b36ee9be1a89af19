--[[ admit.lua: decide a submission in one atomic step, before anything is recorded.

In order: an Idempotency-Key seen before answers with its task (or says it is in progress);
then the user's cap and the global bound may refuse; otherwise the submission is counted in the
user's window (with PQH_CHARGE=time, charged its estimate: the user's recent mean run time, or
default_cost with no history), joins the user's active set and the admitting set, and its key
(if any) is taken. A refusal changes nothing. Atomic, so N concurrent submissions never pass a
cap together.

KEYS[1 .. 10+9L]  the fair queue's keys, in the order of includes/queue.lua (L = levels); this
                 script reads the sizes of the waiting sets, the releasing set and the broker's
                 lists, and adds to {P}:q:admitting
KEYS[11+9L]   {P}:win:<user>   the user's window (zset: task id -> submit time)
KEYS[12+9L]   {P}:act:<user>   the user's active tasks, queued or running (zset: task id ->
                              admit time); a task leaves it when it ends
KEYS[13+9L]  {P}:wc:<user>    the charges of the window's submissions (hash, time mode)
KEYS[14+9L]  {P}:est:<user>   the user's recent mean run time (hash: n, mean; time mode)
KEYS[15+9L]  (only with a key) {P}:idem:<user>:<Idempotency-Key>
ARGV[1]      JSON object:
  task_id             the new task's id
  now                 Unix seconds
  levels              number of levels L
  charge              "tasks" or "time" (PQH_CHARGE)
  default_cost        the estimate of a user with no history, seconds (PQH_TASK_SECONDS)
  window_seconds      PQH_WINDOW_SECONDS
  user_cap            the user's cap on active tasks
  max_queued          PQH_MAX_QUEUED: waiting, admitting and released-not-started, in all
  idempotency_seconds how long a key names its task (PQH_IDEMPOTENCY_SECONDS)
  abandon_after       an admission not queued within this long was abandoned (its web process
                      died); it stops counting against the global bound and its key is free
  broker_lengths      (only when the broker is another Redis) each level list's length, level
                      0 first: see includes/queue.lua

Returns one of {"admitted", count_before, usage_before, cost}, {"replay", task id},
{"in_progress", task id}, {"user_cap", active}, {"queue_full", queued}. For an admission,
count_before is the number of submissions in the window before this one; usage_before and cost
(strings, seconds, time mode; else the count and "1") are the window's charge before it and the
estimate it is charged.
]]
--- @include "queue"
--- @include "window"

local a = cjson.decode(ARGV[1])
local k = queue_keys(a.levels, a.broker_lengths)
local win, act, costs, est = KEYS[k.own], KEYS[k.own + 1], KEYS[k.own + 2], KEYS[k.own + 3]
local idem = KEYS[k.own + 4]

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

redis.call('ZREMRANGEBYSCORE', k.admitting, '-inf', a.now - a.abandon_after)
local queued = redis.call('ZCARD', k.admitting) + redis.call('ZCARD', k.aged)
  + redis.call('ZCARD', k.rel)
for l = 0, a.levels - 1 do
  queued = queued + redis.call('ZCARD', k.lvl[l]) + broker_len(k, l)
end
if queued >= a.max_queued then return {'queue_full', queued} end

local count, usage, cost
if a.charge == 'time' then
  count, usage = window_usage(win, costs, a.now, a.window_seconds)
  cost = tonumber(redis.call('HGET', est, 'mean') or '') or a.default_cost
  window_add_cost(win, costs, a.now, a.window_seconds, a.task_id, cost, usage)
else
  count = window_count(win, a.now, a.window_seconds)
  usage, cost = count, 1
  window_add(win, a.now, a.window_seconds, a.task_id)
end
redis.call('ZADD', act, math.floor(a.now), a.task_id)
redis.call('ZADD', k.admitting, a.now, a.task_id)
if idem then
  redis.call('SET', idem, 'p|' .. a.task_id .. '|' .. num(a.now),
    'EX', math.ceil(a.idempotency_seconds))
end
return {'admitted', count, num(usage), num(cost)}
