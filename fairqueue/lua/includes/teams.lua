--[[ includes/teams.lua: the second step of the order within a level, for users in a team.

Included by includes/queue.lua (after its tag helpers); fairqueue/model_teams.py is the same in
plain Python. A user in no team is a group of its own: its tasks are tagged by start_tag() as
before teams existed. A team is one group at the level's step (its weight is the team's, the
group's finish tag "t:<team>" in P:q:fin:<l>) and orders its own waiting tasks by a second start
tag, among its members (P:q:in:<l>): a member's task starts at max(v_t, f_u) (v_t the team's own
clock P:q:tv:<l>, f_u the member's finish tag P:q:mf:<l>; a member with tasks waiting continues
its chain from f_u) and moves f_u on by cost / member weight. The team's level tags follow that
member order, each cost / team weight after the one before: so the level's one sorted set still
gives the next pick (its first member) and every position (a rank).

Invariant: a team's waiting tasks at a level in (level tag, m) order are in (member tag, m)
order. A step that could break it (a task placed between others, a cancel, a settle, a member's
new weight) ends with team_fix(), which respaces the team's level tags along the member order
when the two orders differ. The work of a team step is bounded by the team's waiting tasks at
the level (its members x their cap).
]]

-- ZMSCORE in chunks (unpack has a limit), the scores aligned with `ms` (false where missing).
local function zscores(set, ms)
  local out = {}
  for i = 1, #ms, 1000 do
    local part = {}
    for j = i, math.min(#ms, i + 999) do part[#part + 1] = ms[j] end
    local got = redis.call('ZMSCORE', set, unpack(part))
    for j = 1, #part do out[i + j - 1] = got[j] end
  end
  return out
end

-- The queue numbers indexed under `name` in a BYLEX index of "<name>:<m>" members.
local function indexed(set, name)
  local prefix = name .. ':'
  local names = redis.call('ZRANGE', set, '[' .. prefix, '(' .. name .. ';', 'BYLEX')
  local ms = {}
  for i, n in ipairs(names) do ms[i] = string.sub(n, #prefix + 1) end
  return ms
end

local function team_weight(k, team) return tonumber(redis.call('HGET', k.teams, team) or '1') end

local function task_cost(k, m)
  local _, _, weight, cost = task_info(redis.call('HGET', k.task, m))
  return cost, weight
end

-- A team's waiting tasks at level l as {m, level tag, member tag}, in (level tag, m) order.
local function team_tasks(k, l, team)
  local ms = indexed(k.tw[l], team)
  local tags, inner = zscores(k.lvl[l], ms), zscores(k.inn[l], ms)
  local out = {}
  for i, m in ipairs(ms) do
    if tags[i] then table.insert(out, {m, tonumber(tags[i]), tonumber(inner[i])}) end
  end
  table.sort(out, function(x, y) return x[2] < y[2] or (x[2] == y[2] and x[1] < y[1]) end)
  return out
end

-- A team member's waiting tasks at level l as {m, member tag}, in (member tag, m) order.
local function member_tasks(k, l, user)
  local ms = indexed(k.uw[l], user)
  local inner = zscores(k.inn[l], ms)
  local out = {}
  for i, m in ipairs(ms) do
    if inner[i] then table.insert(out, {m, tonumber(inner[i])}) end
  end
  table.sort(out, function(x, y) return x[2] < y[2] or (x[2] == y[2] and x[1] < y[1]) end)
  return out
end

-- Give the team's waiting tasks at l level tags along their member order, from the first one's
-- tag, each cost / weight after the one before, and the team's finish tag after the last: when
-- `weight` is given (the team's new weight), always; else only if the two orders differ.
-- Returns the number of tasks tagged again.
local function team_fix(k, l, team, weight)
  local list = team_tasks(k, l, team)
  if #list == 0 then return 0 end
  local order = {}
  for i, t in ipairs(list) do order[i] = t end
  table.sort(order, function(x, y) return x[3] < y[3] or (x[3] == y[3] and x[1] < y[1]) end)
  if not weight then
    local same = true
    for i = 1, #list do
      if list[i][1] ~= order[i][1] then
        same = false
        break
      end
    end
    if same then return 0 end
    weight = team_weight(k, team)
  end
  local s = list[1][2]
  for _, t in ipairs(order) do
    redis.call('ZADD', k.lvl[l], num(s), t[1])
    s = s + task_cost(k, t[1]) / weight
  end
  set_fin(k, l, 't:' .. team, s)
  return #order
end

-- The member start tag of a new task of `user` in `team` at l (start_tag()'s rule, among the
-- team's members, on the team's clock).
local function member_start(k, l, team, user)
  local f = redis.call('HGET', k.mf[l], user)
  local mine = member_tasks(k, l, user)
  if #mine == 0 then
    return math.max(tonumber(redis.call('HGET', k.tv[l], team) or '0'), tonumber(f or '0'))
  end
  if f then return tonumber(f) end
  local last = mine[#mine]
  local cost, weight = task_cost(k, last[1])
  return last[2] + cost / weight
end

-- Put waiting task m (in P:q:task and P:q:age:<l> already) in level l's order.
local function place(k, l, m, user, weight, cost, team)
  if team == '' then
    local s = start_tag(k, l, user)
    set_fin(k, l, user, s + cost / weight)
    redis.call('ZADD', k.lvl[l], num(s), m)
    redis.call('ZADD', k.uw[l], 0, user .. ':' .. m)
    return
  end
  local w = team_weight(k, team)
  local inner = member_start(k, l, team, user)
  redis.call('HSET', k.mf[l], user, num(inner + cost / weight))
  local list = team_tasks(k, l, team)
  local j = 0 -- the team's tasks before it in member order
  for _, t in ipairs(list) do
    if t[3] < inner or (t[3] == inner and t[1] < m) then j = j + 1 end
  end
  local g, s = 't:' .. team, nil
  local f = get_fin(k, l, g)
  if j == #list then -- last of its team: start_tag()'s rule, for the team
    if #list == 0 then
      s = math.max(vtime(k, l), tonumber(f or '0'))
    elseif f then
      s = tonumber(f)
    else
      local last = list[#list]
      s = last[2] + task_cost(k, last[1]) / w
    end
    set_fin(k, l, g, s + cost / w)
  else -- it takes the place of the (j+1)-th, and the team's later tasks move on by cost / w
    s = list[j + 1][2]
    local shift = cost / w
    for i = j + 1, #list do redis.call('ZADD', k.lvl[l], num(list[i][2] + shift), list[i][1]) end
    if f then set_fin(k, l, g, tonumber(f) + shift) end
  end
  redis.call('ZADD', k.lvl[l], num(s), m)
  redis.call('ZADD', k.inn[l], num(inner), m)
  redis.call('ZADD', k.uw[l], 0, user .. ':' .. m)
  redis.call('ZADD', k.tw[l], 0, team .. ':' .. m)
  team_fix(k, l, team)
end

-- Move all the team's waiting tasks at l (those after (tag, m) if `tag`), and its finish tag if
-- kept, by `shift`.
local function shift_team(k, l, team, shift, tag, m)
  for _, t in ipairs(team_tasks(k, l, team)) do
    if not tag or t[2] > tag or (t[2] == tag and t[1] > m) then
      redis.call('ZADD', k.lvl[l], num(t[2] + shift), t[1])
    end
  end
  local f = get_fin(k, l, 't:' .. team)
  if f then set_fin(k, l, 't:' .. team, tonumber(f) + shift) end
end

-- Move a member's waiting tasks at l (those after (inner, m) if `inner`) and its member finish
-- tag by `shift`.
local function shift_member(k, l, user, shift, inner, m)
  for _, t in ipairs(member_tasks(k, l, user)) do
    if not inner or t[2] > inner or (t[2] == inner and t[1] > m) then
      redis.call('ZADD', k.inn[l], num(t[2] + shift), t[1])
    end
  end
  local f = redis.call('HGET', k.mf[l], user)
  if f then redis.call('HSET', k.mf[l], user, num(tonumber(f) + shift)) end
end

-- Take waiting task m out of level l as a cancel does: its group's later tasks (and, in a team,
-- its member's later ones) move up by its cost. The caller runs team_fix() after.
local function unplace(k, l, m, user, weight, cost, team)
  local tag = redis.call('ZSCORE', k.lvl[l], m)
  if tag then
    if team == '' then
      shift_user(k, l, user, -cost / weight, tonumber(tag), m)
    else
      shift_team(k, l, team, -cost / team_weight(k, team), tonumber(tag), m)
      local inner = redis.call('ZSCORE', k.inn[l], m)
      if inner then shift_member(k, l, user, -cost / weight, tonumber(inner), m) end
    end
  end
  unlevel(k, l, user, m, team)
end

-- A team task left level l for service (or aging): the team's clock follows its member tag.
local function team_leave(k, l, team, m)
  if team == '' then return end
  local inner = tonumber(redis.call('ZSCORE', k.inn[l], m))
  if inner and inner > tonumber(redis.call('HGET', k.tv[l], team) or '0') then
    redis.call('HSET', k.tv[l], team, num(inner))
  end
end

-- The user joins `team` ('' for none; weights: the member's, the team's): its waiting tasks
-- leave their group as cancelled ones would, and join the new one, in their order, as if queued
-- now at `weight`. Aged tasks stay as they are. Returns how many tasks moved.
local function regroup(k, user, team, weight, tweight)
  local old = redis.call('HGET', k.grp, user) or ''
  if team ~= '' then
    redis.call('HSET', k.teams, team, tweight)
    redis.call('HSET', k.grp, user, team)
  else
    redis.call('HDEL', k.grp, user)
  end
  if old == team then return 0 end
  local moved = 0
  for l = 0, k.levels - 1 do
    local mine
    if old == '' then mine = user_waiting(k, l, user) else mine = member_tasks(k, l, user) end
    local since = {}
    for i = #mine, 1, -1 do
      local cost, w = task_cost(k, mine[i][1])
      since[i] = redis.call('ZSCORE', k.age[l], mine[i][1])
      unplace(k, l, mine[i][1], user, w, cost, old)
    end
    redis.call('HDEL', k.mf[l], user)
    if old ~= '' and #mine > 0 then team_fix(k, l, old) end
    for i, t in ipairs(mine) do
      local id, _, _, cost = task_info(redis.call('HGET', k.task, t[1]))
      redis.call('HSET', k.task, t[1], task_string(id, user, weight, cost, team))
      redis.call('ZADD', k.age[l], since[i], t[1])
      place(k, l, t[1], user, weight, cost, team)
      moved = moved + 1
    end
  end
  return moved
end

-- The user's recent mean run time moved to `cost`: its waiting tasks are charged it, at every
-- level, respaced from each chain's first tag as reweight.lua respaces them (and, in a team,
-- the team's level tags along its member order with the new costs).
local function follow_mean(k, user, cost)
  local team = redis.call('HGET', k.grp, user)
  for l = 0, k.levels - 1 do
    local s
    local mine
    if team then mine = member_tasks(k, l, user) else mine = user_waiting(k, l, user) end
    for _, t in ipairs(mine) do
      local id, _, weight = task_info(redis.call('HGET', k.task, t[1]))
      s = s or t[2]
      redis.call('ZADD', team and k.inn[l] or k.lvl[l], num(s), t[1])
      redis.call('HSET', k.task, t[1], task_string(id, user, weight, cost, team or ''))
      s = s + cost / weight
    end
    if s and team then
      redis.call('HSET', k.mf[l], user, num(s))
      team_fix(k, l, team, team_weight(k, team))
    elseif s then
      set_fin(k, l, user, s)
    end
  end
end
