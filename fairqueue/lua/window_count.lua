--[[ window_count.lua: count a user's submissions in the window, without recording one.

KEYS[1]  <prefix>:win:<user>   the user's window (zset: task id -> submit time)
ARGV[1]  now                   Unix seconds
ARGV[2]  seconds               the window's length T (PQH_WINDOW_SECONDS)

Returns the number of submissions made in the last T seconds.
]]
--- @include "window"

return window_count(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
