--[[ reweight.lua: a user's weight changed: its waiting tasks follow the new weight now.

At each level the user's waiting tasks keep their order and the first its start tag; each next
one starts cost / weight after the one before it, with the new weight, and so does the user's
finish tag. So a weight edited in the admin (or with set_weight) applies to the backlog already
queued, not only to new submissions. (A user in a team: its weight among the
team's members; its member tags are respaced so, and the team's order follows.) Aged tasks are
not touched (they go oldest first). The
work is bounded by the user's waiting tasks, at most its cap per level.

KEYS[1 .. 10+9L]  the fair queue's keys, in the order of includes/queue.lua (L = levels)
ARGV[1]  JSON object: levels, user (user id), weight (its new weight)

Returns the number of waiting tasks that were given new tags.
]]
--- @include "queue"

local a = cjson.decode(ARGV[1])
local k = queue_keys(a.levels)
local user = tostring(a.user)
local moved = 0
local team = redis.call('HGET', k.grp, user)
if team then
  -- A member of a team: its member tags are respaced at the new weight, the same way; the
  -- team's level tags follow the member order (team_fix).
  for l = 0, a.levels - 1 do
    local s
    for _, t in ipairs(member_tasks(k, l, user)) do
      local id, _, _, cost = task_info(redis.call('HGET', k.task, t[1]))
      s = s or t[2]
      redis.call('ZADD', k.inn[l], num(s), t[1])
      redis.call('HSET', k.task, t[1], task_string(id, user, a.weight, cost, team))
      s = s + cost / a.weight
      moved = moved + 1
    end
    if s then
      redis.call('HSET', k.mf[l], user, num(s))
      team_fix(k, l, team)
    end
  end
  return moved
end
for l = 0, a.levels - 1 do
  local tasks = user_waiting(k, l, user)
  local s
  for _, t in ipairs(tasks) do
    local id, _, _, cost = task_info(redis.call('HGET', k.task, t[1]))
    s = s or t[2]
    redis.call('ZADD', k.lvl[l], num(s), t[1])
    redis.call('HSET', k.task, t[1], id .. '|' .. user .. '|' .. a.weight .. '|' .. num(cost))
    s = s + cost / a.weight
    moved = moved + 1
  end
  if s then set_fin(k, l, user, s) end
end
return moved
