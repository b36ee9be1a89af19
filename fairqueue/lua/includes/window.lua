--[[ includes/window.lua: the sliding window of one user's submissions.

The window is a sorted set: one member per submission (its task id), scored by its time. A
submission stops counting exactly `seconds` after it was made, whatever the user does later.
With PQH_CHARGE=time a hash beside it holds each submission's charge in seconds (its estimate,
then what its run took) and, in the field "sum", their total: the window's usage.
]]

-- Drop the submissions older than the window and return how many remain.
local function window_count(key, now, seconds)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - seconds)
  return redis.call('ZCARD', key)
end

-- The same, also dropping the charges of what left, and return the seconds still charged too.
-- Each submission leaves once, so the work is bounded per submission.
local function window_usage(key, costs, now, seconds)
  local gone = redis.call('ZRANGEBYSCORE', key, '-inf', now - seconds)
  local sum = tonumber(redis.call('HGET', costs, 'sum') or '0')
  for _, id in ipairs(gone) do
    local c = redis.call('HGET', costs, id)
    if c then
      sum = sum - tonumber(c)
      redis.call('HDEL', costs, id)
    end
  end
  local count = window_count(key, now, seconds)
  if count == 0 or sum < 0 then sum = 0 end -- no drift of float sums past an empty window
  if #gone > 0 then redis.call('HSET', costs, 'sum', string.format('%.17g', sum)) end
  return count, sum
end

-- Record one submission; the key expires once its newest member has left the window.
local function window_add(key, now, seconds, member)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, math.ceil(seconds * 1000))
end

-- Record one submission charged `cost` seconds, on top of a usage of `sum` seconds.
local function window_add_cost(key, costs, now, seconds, member, cost, sum)
  window_add(key, now, seconds, member)
  redis.call('HSET', costs, member, string.format('%.17g', cost),
    'sum', string.format('%.17g', sum + cost))
  redis.call('PEXPIRE', costs, math.ceil(seconds * 1000))
end

-- Change the charge of a submission still in the window (a settled estimate, a refund with
-- cost nil). Returns true if the window held it.
local function window_recharge(key, costs, member, cost)
  local old = redis.call('HGET', costs, member)
  if not old then
    if not cost then redis.call('ZREM', key, member) end
    return false
  end
  local sum = tonumber(redis.call('HGET', costs, 'sum') or '0') - tonumber(old)
  if cost then
    redis.call('HSET', costs, member, string.format('%.17g', cost))
    sum = sum + cost
  else
    redis.call('HDEL', costs, member)
    redis.call('ZREM', key, member)
  end
  redis.call('HSET', costs, 'sum', string.format('%.17g', math.max(0, sum)))
  return true
end
