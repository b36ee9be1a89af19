--[[ includes/queue.lua: the fair queue's keys and the steps its scripts share.

A waiting task is named in Redis by its queue number `m`: TaskRecord.queue_seq, zero-padded to
12 digits so that members with equal scores sort in arrival order. Every key shares the
deployment's hash tag {P} (P = PQH_REDIS_PREFIX), so the queue can live on one Redis Cluster
slot, and every script gets every key it touches in KEYS, in this order (queue_keys):

  KEYS[1]  {P}:q:task       hash  m -> "<task id>|<user>|<weight>|<cost>[|<team>]", every waiting
                                  task (<weight>: the user's; <team>: its team, if it has one)
  KEYS[2]  {P}:q:aged       zset  m -> submit time; waiting tasks that reached the aging bound
  KEYS[3]  {P}:q:vt         hash  level -> virtual time: the start tag of the last task that left it
  KEYS[4]  {P}:q:out        hash  task id -> "<target level>|<aged 0/1>|<release number>";
                                  picked, not yet started; field "#": the last release number
                                  (releases are numbered in the order they are handed out)
  KEYS[5]  {P}:q:rel        zset  task id -> pick time; picked, publish not yet confirmed
  KEYS[6]  {P}:q:brk        zset  task id -> submit time; picked and not yet started
  KEYS[7]  {P}:q:admitting  zset  task id -> admit time; admitted, not yet in the fair queue
  KEYS[8]  {P}:q:grp        hash  user -> its team, for the users in a team whose tasks were queued
  KEYS[9]  {P}:q:teams      hash  team -> the team's weight
  KEYS[10] {P}:q:hold       hash  (PQH_CHARGE=time) what is held for the picked tasks not yet
                                  settled: "t|<task id>" -> "<level>|<group>|<cost>" of
                                  each (the cost it was picked at: settle.lua's charge);
                                  "n|<l>|<group>" -> how many a group has at level l;
                                  "f|<l>|<group>" -> its finish tag, kept here when the level's
                                  virtual time passed it while such tasks ran (see advance())
  then, for each level l = 0 .. L-1, eight keys:
           {P}:q:lvl:<l>    zset  m -> SFQ start tag among the groups (a team, or a user in no
                                  team); the waiting tasks of level l not aged
           {P}:q:age:<l>    zset  m -> submit time; the same members
           {P}:q:fin:<l>    zset  group -> finish tag of its last task at l, kept while above the
                                  level's virtual time (below it, max(V, F) = V for ever); a group
                                  is "<user>" (a user in no team) or "t:<team>"
           {P}:q:uw:<l>     zset  "<user>:<m>" -> 0; the level's waiting tasks by user (BYLEX)
           {P}:q:in:<l>     zset  m -> the task's start tag among its team's members (team tasks)
           {P}:q:mf:<l>     hash  user -> its finish tag among its team's members (team members)
           {P}:q:tw:<l>     zset  "<team>:<m>" -> 0; the level's waiting tasks by team (BYLEX)
           {P}:q:tv:<l>     hash  team -> the team's own virtual time: the member start tag of its
                                  last task that left the level
  then the broker's list of each level's Celery queue, level 0 first (L keys);
  then the script's own keys, from KEYS[11 + 9L].

A script reads the broker's lists itself, atomically with the queue, when the broker shares
this Redis. When it does not (a Redis Cluster beside a plain Redis broker: kombu has no Cluster
transport), the caller reads the lists' lengths just before the script and passes them in
ARGV as `broker_lengths` (level 0 first), and broker_len() answers from them.

Start-time fair queuing, tags given on arrival: a task of user u at level l with cost c (1 when
PQH_CHARGE=tasks, its estimated seconds when PQH_CHARGE=time) starts at S = max(V_l, F_u) and
moves F_u to S + c / weight; the level serves the smallest S first.

Teams (includes/teams.lua): a user in no team is a group of its own, tagged exactly so. A team is
one group whose weight is the team's: its waiting tasks are ordered among themselves by their
member start tags (start-time fair queuing among the team's members, by the members' weights,
on the team's own clock), and the team's start tags are given along that order, each cost / team
weight after the one before. So the level's one order is: the group furthest behind its share,
then, within a team, the member furthest behind, and a position is still a rank.
]]

local function pad(seq) return string.format('%012d', seq) end

-- A number as Redis should keep it: every bit (Lua's own tostring keeps 14 digits).
local function num(x) return string.format('%.17g', x) end

local function queue_keys(levels, broker_lengths)
  local k = {
    task = KEYS[1], aged = KEYS[2], vt = KEYS[3], out = KEYS[4], rel = KEYS[5], brk = KEYS[6],
    admitting = KEYS[7], grp = KEYS[8], teams = KEYS[9], hold = KEYS[10], levels = levels,
    lvl = {}, age = {}, fin = {}, uw = {}, inn = {}, mf = {}, tw = {}, tv = {}, broker = {},
  }
  local i = 11
  for l = 0, levels - 1 do
    k.lvl[l], k.age[l], k.fin[l], k.uw[l] = KEYS[i], KEYS[i + 1], KEYS[i + 2], KEYS[i + 3]
    k.inn[l], k.mf[l], k.tw[l], k.tv[l] = KEYS[i + 4], KEYS[i + 5], KEYS[i + 6], KEYS[i + 7]
    i = i + 8
  end
  for l = 0, levels - 1 do
    k.broker[l] = KEYS[i]
    i = i + 1
  end
  k.own = i -- the index of the script's first own key
  k.broker_lengths = broker_lengths -- nil: read the lists here
  return k
end

-- How many messages the broker's list of level l holds.
local function broker_len(k, l)
  if k.broker_lengths then return tonumber(k.broker_lengths[l + 1]) or 0 end
  return redis.call('LLEN', k.broker[l])
end

-- "<task id>|<user>|<weight>|<cost>[|<team>]" -> id, user, weight, cost, team ('' if none).
local function task_info(s)
  local id, user, weight, cost, team = string.match(s, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|?(.*)$')
  return id, user, tonumber(weight), tonumber(cost), team
end

local function task_string(id, user, weight, cost, team)
  local s = id .. '|' .. user .. '|' .. weight .. '|' .. num(cost)
  if team ~= '' then s = s .. '|' .. team end
  return s
end

local function vtime(k, l) return tonumber(redis.call('HGET', k.vt, l) or '0') end

-- A task with start tag `tag` left level l for service: the level's clock follows it, and finish
-- tags it has passed no longer matter.
-- A group whose picked tasks at l are not all settled keeps its finish tag in P:q:hold, so that
-- their settles still move it: a refund or a correction that comes after the clock passed it
-- is not lost (docs/fairness.md, "Refunds are never lost").
local function advance(k, l, tag)
  if tag > vtime(k, l) then
    redis.call('HSET', k.vt, l, num(tag))
    local gone = redis.call('ZRANGEBYSCORE', k.fin[l], '-inf', tag, 'WITHSCORES')
    for i = 1, #gone, 2 do
      if redis.call('HEXISTS', k.hold, 'n|' .. l .. '|' .. gone[i]) == 1 then
        redis.call('HSET', k.hold, 'f|' .. l .. '|' .. gone[i], gone[i + 1])
      end
    end
    redis.call('ZREMRANGEBYSCORE', k.fin[l], '-inf', tag)
  end
end

-- A group's finish tag at l (a string, or nil): kept in P:q:fin:<l>, or held in P:q:hold.
local function get_fin(k, l, g)
  local f = redis.call('ZSCORE', k.fin[l], g)
  if f then return f end
  return redis.call('HGET', k.hold, 'f|' .. l .. '|' .. g) or nil
end

local function set_fin(k, l, g, value)
  redis.call('ZADD', k.fin[l], num(value), g)
  redis.call('HDEL', k.hold, 'f|' .. l .. '|' .. g)
end

-- A picked task of group g at level l is held until it settles (PQH_CHARGE=time).
local function hold_task(k, l, g, id, cost)
  redis.call('HINCRBY', k.hold, 'n|' .. l .. '|' .. g, 1)
  redis.call('HSET', k.hold, 't|' .. id, l .. '|' .. g .. '|' .. num(cost))
end

-- The cost a held task was picked at, or nil.
local function held_cost(k, id)
  local h = redis.call('HGET', k.hold, 't|' .. id)
  if not h then return nil end
  return tonumber(string.match(h, '|([^|]*)$'))
end

-- Task `id` settled: its group holds one task less; with none left, a held finish tag goes back
-- to P:q:fin:<l> if still above the level's clock (else it is dropped, as advance() would).
local function unhold_task(k, id)
  local h = redis.call('HGET', k.hold, 't|' .. id)
  if not h then return end
  redis.call('HDEL', k.hold, 't|' .. id)
  local l, g = string.match(h, '^(%d+)|([^|]*)|')
  if redis.call('HINCRBY', k.hold, 'n|' .. l .. '|' .. g, -1) > 0 then return end
  redis.call('HDEL', k.hold, 'n|' .. l .. '|' .. g)
  local f = redis.call('HGET', k.hold, 'f|' .. l .. '|' .. g)
  if f then
    redis.call('HDEL', k.hold, 'f|' .. l .. '|' .. g)
    if tonumber(f) > vtime(k, tonumber(l)) then redis.call('ZADD', k.fin[tonumber(l)], f, g) end
  end
end

-- The waiting tasks of `user` at level l, as {m, tag} in service order (tag, then m). At most
-- the user's cap (PQH_USER_MAX_ACTIVE) of them.
local function user_waiting(k, l, user)
  local prefix = user .. ':'
  local names = redis.call('ZRANGE', k.uw[l], '[' .. prefix, '(' .. user .. ';', 'BYLEX')
  if #names == 0 then return {} end
  local ms = {}
  for i, name in ipairs(names) do ms[i] = string.sub(name, #prefix + 1) end
  local tags = redis.call('ZMSCORE', k.lvl[l], unpack(ms))
  local out = {}
  for i, m in ipairs(ms) do
    if tags[i] then table.insert(out, {m, tonumber(tags[i])}) end
  end
  table.sort(out, function(x, y) return x[2] < y[2] or (x[2] == y[2] and x[1] < y[1]) end)
  return out
end

-- The start tag of a new task of `user` at level l. A user with no task waiting there starts
-- at max(V, F): idle time earns no credit (the level's clock V). A user with tasks waiting
-- continues its chain: the new task starts where its last one ends (its finish tag F, even
-- below V), each cost/weight after the one before. So a settle that refunds a backlogged user
-- (its run took less than its estimate, moving its tags and F down) is never lost to V, which
-- the bound in docs/fairness.md needs. F is kept while above V; if V passed it (after such a
-- refund) it is found again from the user's last waiting task (bounded by the user's cap).
local function start_tag(k, l, user)
  local f = get_fin(k, l, user)
  local waiting = redis.call('ZRANGE', k.uw[l], '[' .. user .. ':', '(' .. user .. ';', 'BYLEX',
    'LIMIT', 0, 1)
  if not waiting[1] then return math.max(vtime(k, l), tonumber(f or '0')) end
  if f then return tonumber(f) end
  local mine = user_waiting(k, l, user)
  local last = mine[#mine]
  local _, _, weight, cost = task_info(redis.call('HGET', k.task, last[1]))
  return last[2] + cost / weight
end

-- Move the user's waiting tasks at level l that come after (tag, m) (all of them if `tag` is
-- nil), and its finish tag if kept, by `shift` of virtual time.
local function shift_user(k, l, user, shift, tag, m)
  if shift == 0 then return end
  for _, t in ipairs(user_waiting(k, l, user)) do
    if not tag or t[2] > tag or (t[2] == tag and t[1] > m) then
      redis.call('ZADD', k.lvl[l], num(t[2] + shift), t[1])
    end
  end
  local f = get_fin(k, l, user)
  if f then set_fin(k, l, user, tonumber(f) + shift) end
end

-- Take a waiting task out of its level's sets (not out of P:q:task); `team` is its team or ''.
local function unlevel(k, l, user, m, team)
  redis.call('ZREM', k.lvl[l], m)
  redis.call('ZREM', k.age[l], m)
  redis.call('ZREM', k.uw[l], user .. ':' .. m)
  if team and team ~= '' then
    redis.call('ZREM', k.inn[l], m)
    redis.call('ZREM', k.tw[l], team .. ':' .. m)
  end
end

--- @include "teams"

-- Add one task {id, seq, user, level, weight, cost, submitted, team?, tweight?}: straight to the
-- aged set if it has already waited the bound (a task queued again after Redis lost its data),
-- else to its level with its start tag. Returns false, changing nothing, if the queue holds the
-- task already (waiting, picked or released), so that two recovery sweeps cannot queue it twice.
-- A task whose team is not the one its user's waiting tasks are in first moves them (regroup);
-- a task with no team field joins the user's group as the queue holds it.
local function add(k, t, cutoff)
  local m = pad(t.seq)
  if redis.call('HEXISTS', k.task, m) == 1 or redis.call('HEXISTS', k.out, t.id) == 1 then
    return false
  end
  local user, team, cost = tostring(t.user), t.team, t.cost or 1
  local now_in = redis.call('HGET', k.grp, user) or ''
  if team == nil then -- no team given: the one the queue holds the user in
    team = now_in
  elseif team ~= now_in then
    regroup(k, user, team, t.weight, t.tweight)
  elseif team ~= '' then
    redis.call('HSET', k.teams, team, t.tweight)
  end
  redis.call('HSET', k.task, m, task_string(t.id, user, t.weight, cost, team))
  if t.submitted <= cutoff then
    redis.call('ZADD', k.aged, num(t.submitted), m)
    return true
  end
  redis.call('ZADD', k.age[t.level], num(t.submitted), m)
  place(k, t.level, m, user, t.weight, cost, team)
  return true
end

-- Move up to `limit` tasks that have waited the bound (submitted at or before `cutoff`) out of
-- their levels into the aged set, oldest first across levels, so that the aged set always holds
-- the oldest of them and the sets stay disjoint. Each task moves once: the work is bounded per
-- task, and a call's share of it by `limit`.
local function age_out(k, levels, cutoff, limit)
  for _ = 1, limit do
    local best, bl, bts
    for l = 0, levels - 1 do
      local r = redis.call('ZRANGE', k.age[l], 0, 0, 'WITHSCORES')
      if r[1] then
        local ts = tonumber(r[2])
        if ts <= cutoff and (not best or ts < bts or (ts == bts and r[1] < best)) then
          best, bl, bts = r[1], l, ts
        end
      end
    end
    if not best then return end
    local tag = tonumber(redis.call('ZSCORE', k.lvl[bl], best))
    local _, user, _, _, team = task_info(redis.call('HGET', k.task, best))
    team_leave(k, bl, team, best)
    unlevel(k, bl, user, best, team)
    advance(k, bl, tag)
    redis.call('ZADD', k.aged, num(bts), best)
  end
end

-- A worker took task `id` from the broker: it is no longer released-not-started.
local function forget_released(k, id)
  redis.call('ZREM', k.brk, id)
  redis.call('ZREM', k.rel, id)
  redis.call('HDEL', k.out, id)
end

-- The level of the oldest released task not yet started if it has waited the bound (submitted
-- at or before `cutoff`): nothing more is released until a worker takes it. Else -1.
-- A published task whose level queue is empty is not in the broker any more (a worker took it
-- and died before reporting the start, or the broker lost it): it is dropped, so it cannot
-- block releases.
local function stuck_level(k, cutoff)
  for _ = 1, 16 do
    local r = redis.call('ZRANGE', k.brk, 0, 0, 'WITHSCORES')
    if not r[1] then return -1 end
    local target = tonumber(string.match(redis.call('HGET', k.out, r[1]) or '0|0', '^(%d+)'))
    if redis.call('ZSCORE', k.rel, r[1]) or broker_len(k, target) > 0 then
      if tonumber(r[2]) <= cutoff then return target end
      return -1
    end
    forget_released(k, r[1])
  end
  return -1
end

-- Pick up to a.max_picks tasks that may be released now; see docs/fairness.md for the rules.
-- a: {now, max_wait, buffer, recover_after, max_picks, levels, started, age_limit}
-- Returns {{task id, target, aged, kind}, ...}.
local function pick(k, a)
  local out = {}
  local cutoff = a.now - a.max_wait
  if a.started and a.started ~= '' then forget_released(k, a.started) end
  -- Picks never confirmed (the releaser died between pick and publish) are handed out again.
  local stale = redis.call('ZRANGEBYSCORE', k.rel, '-inf', a.now - a.recover_after, 'LIMIT', 0, 16)
  for _, id in ipairs(stale) do
    local o = redis.call('HGET', k.out, id)
    if o then
      local target, aged = string.match(o, '^(%d+)|(%d+)')
      -- Published again, it joins the end of its level's queue: a new release number.
      local n = redis.call('HINCRBY', k.out, '#', 1)
      redis.call('HSET', k.out, id, target .. '|' .. aged .. '|' .. n)
      redis.call('ZADD', k.rel, num(a.now), id)
      table.insert(out, {id, target, aged, 'recovered'})
    else
      redis.call('ZREM', k.rel, id)
    end
  end
  age_out(k, a.levels, cutoff, a.age_limit)
  if stuck_level(k, cutoff) >= 0 then return out end
  local inflight = redis.call('ZCARD', k.rel)
  for _ = 1, a.max_picks do
    local m, l, target, aged, tag
    local head = redis.call('ZRANGE', k.aged, 0, 0)
    if head[1] then
      m, target, aged = head[1], 0, 1
    else
      for lv = 0, a.levels - 1 do
        local r = redis.call('ZRANGE', k.lvl[lv], 0, 0, 'WITHSCORES')
        if r[1] then
          m, l, target, aged, tag = r[1], lv, lv, 0, tonumber(r[2])
          break
        end
      end
    end
    if not m then break end
    -- Room: released tasks not yet started that a worker would take before or with this one.
    local ahead = inflight
    for b = 0, target do ahead = ahead + broker_len(k, b) end
    if ahead >= a.buffer then break end
    local id, user, _, cost, team = task_info(redis.call('HGET', k.task, m))
    local submitted
    if aged == 1 then
      submitted = redis.call('ZSCORE', k.aged, m)
      redis.call('ZREM', k.aged, m)
    else
      submitted = redis.call('ZSCORE', k.age[l], m)
      team_leave(k, l, team, m)
      unlevel(k, l, user, m, team)
      advance(k, l, tag)
      if a.hold then hold_task(k, l, team ~= '' and 't:' .. team or user, id, cost) end
    end
    redis.call('HDEL', k.task, m)
    local n = redis.call('HINCRBY', k.out, '#', 1)
    redis.call('HSET', k.out, id, target .. '|' .. aged .. '|' .. n)
    redis.call('ZADD', k.rel, num(a.now), id)
    redis.call('ZADD', k.brk, submitted, id)
    inflight = inflight + 1
    table.insert(out, {id, tostring(target), tostring(aged), 'picked'})
  end
  return out
end

-- What every position shares, read once per call: the sizes of the aged set and of each level,
-- and what the workers will take before anything released later, in the order they take it: by
-- level queue, and in each queue first the messages the fair queue did not release (a message
-- kombu put back after its worker was lost: it goes to the end the workers take from), then
-- the released tasks not yet started (the set brk) in release order (each level's Celery queue
-- is first in, first out). At most about L x PQH_RELEASE_BUFFER of them, plus picks not yet
-- confirmed: a constant, whatever the queue's depth.
--   le[t]   how many a worker takes before anything released later into level t: those in
--           level t's queue and better ones;
--   stale   while a released task has waited the bound, nothing is released (rule 2 of
--           docs/fairness.md) until every such task has started: the workers first take
--           everything up to the last of them in that order, `stale` of them (0 if none);
--   index   each released task's place in that order.
-- stuck_level first drops a released task the broker no longer holds, as a pick would.
local function position_context(k, levels, cutoff)
  stuck_level(k, cutoff)
  local c = {aged = redis.call('ZCARD', k.aged), lvl = {}, le = {}, index = {}, stale = 0}
  local count, published = {}, {}
  for l = 0, levels - 1 do
    c.lvl[l] = redis.call('ZCARD', k.lvl[l])
    count[l], published[l] = 0, 0
  end
  local unconfirmed = {}
  for _, id in ipairs(redis.call('ZRANGE', k.rel, 0, -1)) do unconfirmed[id] = true end
  local brk = redis.call('ZRANGE', k.brk, 0, -1, 'WITHSCORES')
  local released = {}
  for i = 1, #brk, 2 do
    local o = redis.call('HGET', k.out, brk[i]) or '0|0|0'
    local target, n = string.match(o, '^(%d+)|%d+|?(%d*)')
    target = tonumber(target)
    count[target] = count[target] + 1
    if not unconfirmed[brk[i]] then published[target] = published[target] + 1 end
    table.insert(released, {
      id = brk[i], target = target, n = tonumber(n) or 0, submitted = tonumber(brk[i + 1]),
    })
  end
  table.sort(released, function(x, y)
    if x.target ~= y.target then return x.target < y.target end
    if x.n ~= y.n then return x.n < y.n end
    return x.id < y.id
  end)
  local place, sum = {}, 0
  for l = 0, levels - 1 do
    -- The queue's messages beyond the released tasks published into it.
    local other = math.max(0, broker_len(k, l) - published[l])
    place[l] = sum + other
    sum = sum + other + count[l]
    c.le[l] = sum
  end
  for _, r in ipairs(released) do
    c.index[r.id] = place[r.target]
    place[r.target] = place[r.target] + 1
    if r.submitted <= cutoff then c.stale = c.index[r.id] + 1 end
  end
  return c
end

-- The tasks that start before task (id, seq, level) if no more tasks arrive and no task reaches
-- the aging bound in the meantime, or -1 if the fair queue does not hold it (docs/fairness.md,
-- "Queue position", says why each term is exact):
--   waiting, with target level t (0 if aged, else its level): the waiting tasks picked before
--     it (the aged tasks older than it if it is aged; else every aged task, every task of a
--     better level and its rank in its level), plus the released tasks a worker takes first:
--     max(le[t], stale);
--   released, at place i of the released order: the released tasks before it, i; and unless
--     it is among the first `stale` (taken while nothing is released), every waiting task
--     whose target level is better than its own, which is released and taken first.
-- Also returns whether the task is lifted by aging (waiting in the aged set, or released aged).
local function position(k, c, id, seq, level)
  local m = pad(seq)
  local r = redis.call('ZRANK', k.aged, m)
  if r then return r + math.max(c.le[0], c.stale), 1 end
  if c.lvl[level] then
    r = redis.call('ZRANK', k.lvl[level], m)
    if r then
      local n = c.aged + r + math.max(c.le[level], c.stale)
      for l = 0, level - 1 do n = n + c.lvl[l] end
      return n, 0
    end
  end
  local o = redis.call('HGET', k.out, id)
  if o then
    local target, aged = string.match(o, '^(%d+)|(%d+)')
    target = tonumber(target)
    local n = c.index[id] or c.le[target] or 0
    if n >= c.stale and target > 0 then
      n = n + c.aged
      for l = 0, target - 1 do n = n + (c.lvl[l] or 0) end
    end
    return n, tonumber(aged)
  end
  return -1, 0
end
