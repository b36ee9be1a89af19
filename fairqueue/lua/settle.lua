--[[ settle.lua: charge a task what its run took, once it has ended (PQH_CHARGE=time).

At admission a task is charged an estimate; when the run that finished ends (success, failure or
a time-limit kill), its owner is charged the seconds it spent in the work callable instead:
  - in the window, if the submission is still in it: its charge becomes `seconds`;
  - in the virtual time of the task's level: the user's waiting tasks there, and its finish tag
    if kept, move by (seconds - charged) / weight, so the user's next tasks start as if the
    estimate had been exact (a user in a team: the team's waiting tasks there and its finish
    tag by (seconds - charged) / team weight, the user's member tags by ... / weight);
  - the user's recent mean run time learns `seconds`: mean += (seconds - mean) / min(n, 5),
    the plain mean of the first five runs, then an exponential average with weight 1/5.
Called once per task (the finish that committed in PostgreSQL calls it).

KEYS[1 .. 10+9L]  the fair queue's keys, in the order of includes/queue.lua (L = levels)
KEYS[11+9L]   {P}:win:<user>   the user's window
KEYS[12+9L]   {P}:wc:<user>    the charges of the window's submissions
KEYS[13+9L]  {P}:est:<user>   the user's recent mean run time (hash: n, mean)
ARGV[1]  JSON object:
  levels   number of levels L
  id       the task id
  user     its user id
  level    the level it was queued at
  weight   the user's weight now (in a team: its weight among the members)
  charged  the estimate it was charged at admission, seconds (a task held since its pick is
           charged the cost it was picked at instead: its estimate may have followed the mean)
  seconds  what its run took, seconds
  keep     seconds the user's mean is kept after its last run (PQH_HISTORY_DAYS)
  follow   true (PQH_CHARGE=time): the user's waiting tasks are then charged its new mean,
           respaced from each chain's first tag (follow_mean() in includes/teams.lua)

Returns {1 if the window still held the submission else 0, the user's new mean (string)}.
]]
--- @include "queue"
--- @include "window"

local a = cjson.decode(ARGV[1])
local k = queue_keys(a.levels)
local win, costs, est = KEYS[k.own], KEYS[k.own + 1], KEYS[k.own + 2]
local in_window = window_recharge(win, costs, a.id, a.seconds)
local user = tostring(a.user)
local team = redis.call('HGET', k.grp, user)
local charged = held_cost(k, a.id) or a.charged
if team then
  local delta = a.seconds - charged
  shift_team(k, a.level, team, delta / team_weight(k, team), nil, nil)
  shift_member(k, a.level, user, delta / a.weight, nil, nil)
  team_fix(k, a.level, team)
else
  shift_user(k, a.level, user, (a.seconds - charged) / a.weight, nil, nil)
end
unhold_task(k, a.id)
local n = redis.call('HINCRBY', est, 'n', 1)
local mean = tonumber(redis.call('HGET', est, 'mean') or '0')
mean = mean + (a.seconds - mean) / math.min(n, 5)
redis.call('HSET', est, 'mean', num(mean))
if a.follow then follow_mean(k, user, mean) end
redis.call('EXPIRE', est, math.ceil(a.keep))
return {in_window and 1 or 0, num(mean)}
