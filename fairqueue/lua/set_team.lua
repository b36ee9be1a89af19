--[[ set_team.lua: a user joins a team, moves to another, or leaves its team.

Its waiting tasks leave their group (its old team, or its own group if it had no team) as
cancelled tasks would: the group's later tasks move up by their cost / group weight. They then
join the new group in the order they had, as if queued now, at the member weight `weight` (the
user's weight) in a team whose weight is `team_weight`, or, with no team, at `weight` as a group
of its own. Aged tasks are not touched. Nothing moves if the user is in that team already (the
team's weight is still set to `team_weight`). Bounded by the user's waiting tasks times its
groups' waiting tasks at their levels.

KEYS[1 .. 10+9L]  the fair queue's keys, in the order of includes/queue.lua (L = levels)
ARGV[1]  JSON object: levels, user (user id), team (the team's key, "" for none), weight (the
         user's weight), team_weight (the team's weight; ignored without a team)

Returns the number of waiting tasks that moved.
]]
--- @include "queue"

local a = cjson.decode(ARGV[1])
local k = queue_keys(a.levels)
return regroup(k, tostring(a.user), a.team, a.weight, a.team_weight)
