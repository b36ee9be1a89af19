--[[ rate.lua: take one request from a client's bucket, or say how long until there is one.

A token bucket kept as one number (GCRA, the generic cell rate algorithm): the bucket holds
`burst` requests and refills one every `interval` seconds, so `burst` requests may come at once
and then one every `interval`. The key holds the bucket's theoretical arrival time (TAT): the
instant at which it would be full again. Atomic, so every web process counts in the same
bucket and concurrent requests cannot slip through together.

KEYS[1]  {P}:rate:<scope>:<client>  string: the TAT, Unix seconds; expires when the bucket
                                    is full again (an idle client costs no memory)
ARGV[1]  JSON object:
  now       Unix seconds; absent: the Redis server's own clock (TIME), the one clock every web
            process shares (a request delayed between reading its clock and reaching Redis
            would otherwise be judged at an instant older than the bucket's last request)
  interval  seconds per request at the sustained rate (the rate's period / its count)
  burst     how many requests the bucket holds (the rate's count)

Returns {1, "0"} when the request is allowed (it is counted), or {0, wait} when it is not
(nothing is counted), with `wait` the seconds until one request would be allowed (a string).
]]

local a = cjson.decode(ARGV[1])
if not a.now then
  local t = redis.call('TIME')
  a.now = tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < a.now then tat = a.now end
-- A bucket of `burst` allows a TAT up to (burst - 1) intervals ahead of now (a microsecond of
-- slack: times near 1.7e9 s keep only about 1e-7 s of a sum of thirds).
local tolerance = (a.burst - 1) * a.interval
if tat - a.now > tolerance + 1e-6 then
  return {0, string.format('%.17g', tat - tolerance - a.now)}
end
local next_tat = tat + a.interval
redis.call('SET', KEYS[1], string.format('%.17g', next_tat),
  'PX', math.max(1, math.ceil((next_tat - a.now) * 1000)))
return {1, '0'}
