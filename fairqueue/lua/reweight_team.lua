--[[ reweight_team.lua: a team's weight changed: its waiting tasks follow the new weight now.

At each level the team's waiting tasks keep their order (their member order) and the first its
level tag; each next one starts cost / weight after the one before it, with the team's new
weight, and so does the team's finish tag. Its members' own tags do not change. Aged tasks are
not touched. The work is bounded by the team's waiting tasks (its members x their cap, per
level).

KEYS[1 .. 10+9L]  the fair queue's keys, in the order of includes/queue.lua (L = levels)
ARGV[1]  JSON object: levels, team (the team's key), weight (its new weight)

Returns the number of waiting tasks that were given new tags.
]]
--- @include "queue"

local a = cjson.decode(ARGV[1])
local k = queue_keys(a.levels)
redis.call('HSET', k.teams, a.team, a.weight)
local moved = 0
for l = 0, a.levels - 1 do moved = moved + team_fix(k, l, a.team, a.weight) end
return moved
