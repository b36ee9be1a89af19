--[[ includes/window.lua: the sliding window of one user's submissions.

The window is a sorted set: one member per submission (its task id), scored by its time. A
submission stops counting exactly `seconds` after it was made, whatever the user does later.
]]

-- Drop the submissions older than the window and return how many remain.
local function window_count(key, now, seconds)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - seconds)
  return redis.call('ZCARD', key)
end

-- Record one submission; the key expires once its newest member has left the window.
local function window_add(key, now, seconds, member)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, math.ceil(seconds * 1000))
end
