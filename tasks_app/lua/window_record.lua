--[[ window_record.lua: count a user's submissions in the window and record one more.

Read and record must be one atomic step: with several web processes, a separate read and
write lets two concurrent submissions see the same count and lose one of them.

KEYS[1]  <prefix>:win:<user>   the user's window (zset: task id -> submit time)
ARGV[1]  now                   the submission's time, Unix seconds
ARGV[2]  seconds               the window's length T (PQH_WINDOW_SECONDS)
ARGV[3]  member                the submission's task id

Returns the number of submissions in the window before this one.
]]
--- @include "window"

local now, seconds = tonumber(ARGV[1]), tonumber(ARGV[2])
local count = window_count(KEYS[1], now, seconds)
window_add(KEYS[1], now, seconds, ARGV[3])
return count
