"""The fair queue: accepted tasks wait in Redis and are released to Celery when a slot frees.

A Celery message's priority cannot change once it sits in the broker, so the order is decided
at release time instead. Waiting tasks are kept per level and per user; within a level, users
are served by start-time fair queuing (each user's virtual tag advances by 1/weight per task
served, the user with the smallest tag goes next), and across levels level 0 goes first. A task
that has waited PQH_MAX_WAIT_SECONDS (aging) is released before everything else, oldest first,
into the level-0 queue.

A release moves a task into the Celery queue of its level only while fewer than
PQH_RELEASE_BUFFER released tasks that would run before or with it sit unstarted in the
broker, so released tasks cannot pile up ahead of a better task that arrives later. A released
task that has waited PQH_MAX_WAIT_SECONDS in the broker (a worse level, overtaken by better
ones) stops all releases until the workers have taken it.

Every pick is one Lua script, atomic across any number of web processes and workers. A picked
task is parked in a "releasing" set until its publish is confirmed; a pick whose releaser died
before confirming is picked again after PQH_RELEASE_RECOVER_SECONDS (the worker's claim in
PostgreSQL drops a duplicate).

All keys live under PQH_REDIS_PREFIX and are built inside the scripts from that prefix, which
ties the fair queue to one Redis server (no Redis Cluster).
"""

import time
from dataclasses import dataclass

from django.conf import settings

from .redis_client import get_redis, get_script, key

# Shared Lua: fields of a waiting task are "user|level|weight|submitted|seq", then "|target|aged"
# once picked. A backlogged user's entry in a level's sorted set is "<seq of its head>|<user>":
# users with equal tags are then served in the order their waiting heads arrived (Redis orders
# equal scores by member), not by user id.
_LUA_HELPERS = """
local ns = ARGV[1]
local function split(s)
  local out = {}
  for part in string.gmatch(s, '([^|]*)|?') do
    if part ~= '' then table.insert(out, part) end
  end
  return out
end
local function wkey(level, user) return ns .. ':q:wait:' .. level .. ':' .. user end
local meta, age, rel, vt = ns .. ':q:meta', ns .. ':q:age', ns .. ':q:rel', ns .. ':q:vt'
local brk = ns .. ':q:brk'
local function member(id, user)
  return string.format('%016d', tonumber(split(redis.call('HGET', meta, id))[5])) .. '|' .. user
end
"""

# Enqueue one task, then pick what can be released now: one round trip per submission.
_ENQUEUE = """
local id, user, level, weight, ts = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
-- Idempotent: a task the queue already holds (two recovery sweeps at once) is not added twice.
local known = redis.call('HEXISTS', meta, id) == 1 or redis.call('ZSCORE', brk, id)
local wl = wkey(level, user)
if not known then
  local seq = redis.call('INCR', ns .. ':q:seq')
  redis.call('HSET', meta, id, user .. '|' .. level .. '|' .. weight .. '|' .. ts .. '|' .. seq)
  redis.call('ZADD', age, ts, id)
end
if not known and redis.call('RPUSH', wl, id) == 1 then
  -- The user becomes backlogged at this level: start at the level's virtual clock, or at the
  -- user's own finish tag if it is ahead, so idle time earns no credit.
  local v = tonumber(redis.call('HGET', vt, level) or '0')
  local fin = ns .. ':q:fin:' .. level
  local f = tonumber(redis.call('HGET', fin, user) or '0')
  redis.call('HDEL', fin, user)
  redis.call('ZADD', ns .. ':q:lvl:' .. level, math.max(v, f), member(id, user))
end
"""

# Pick up to max_picks tasks that may be released now. ARGV after ns: now, max_wait, buffer,
# recover_after, max_picks, levels, started (a task a worker just took, or ''), forget_after.
# KEYS: the broker's list for each level, level 0 first.
_PICK = """
local now, max_wait, buffer = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local recover_after, max_picks, levels = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local started, forget_after = ARGV[13], tonumber(ARGV[14])
local out = {}
-- Released tasks not yet taken by a worker, by submit time. A worse-level task there can be
-- overtaken for ever by better levels released after it, so once it has waited max_wait, no
-- more releases until the workers have drained what is ahead of it and taken it.
if started ~= '' then redis.call('ZREM', brk, started) end
redis.call('ZREMRANGEBYSCORE', brk, '-inf', now - forget_after)
local stuck = redis.call('ZRANGE', brk, 0, 0, 'WITHSCORES')
local blocked = #stuck > 0 and now - tonumber(stuck[2]) >= max_wait
-- Releases never confirmed (the releaser died between pick and publish) are handed out again.
local stale = redis.call('ZRANGEBYSCORE', rel, '-inf', now - recover_after, 'LIMIT', 0, 16)
for _, id in ipairs(stale) do
  local m = redis.call('HGET', meta, id)
  if m then
    local f = split(m)
    redis.call('ZADD', rel, now, id)
    table.insert(out, {id, f[6] or f[2], f[7] or '0', 'recovered'})
  else
    redis.call('ZREM', rel, id)
  end
end
local inflight = redis.call('ZCARD', rel)
if blocked then max_picks = 0 end
for _ = 1, max_picks do
  local cand, user, level, target, aged
  local oldest = redis.call('ZRANGE', age, 0, 0, 'WITHSCORES')
  if #oldest > 0 and now - tonumber(oldest[2]) >= max_wait then
    cand = oldest[1]
    local f = split(redis.call('HGET', meta, cand))
    user, level, target, aged = f[1], f[2], '0', '1'
  else
    for l = 0, levels - 1 do
      local u = redis.call('ZRANGE', ns .. ':q:lvl:' .. l, 0, 0)
      if #u > 0 then
        user, level, target, aged = string.match(u[1], '|(.*)$'), tostring(l), tostring(l), '0'
        cand = redis.call('LINDEX', wkey(level, user), 0)
        break
      end
    end
  end
  if not cand then break end
  -- Room: released tasks not yet started that a worker would take before or with this one.
  local ahead = inflight
  for l = 0, tonumber(target) do ahead = ahead + redis.call('LLEN', KEYS[l + 1]) end
  if ahead >= buffer then break end
  local m = redis.call('HGET', meta, cand)
  local weight = tonumber(split(m)[3])
  local wl = wkey(level, user)
  local lvl = ns .. ':q:lvl:' .. level
  local entry = member(redis.call('LINDEX', wl, 0), user)
  local tag = tonumber(redis.call('ZSCORE', lvl, entry) or redis.call('HGET', vt, level) or '0')
  if redis.call('LINDEX', wl, 0) == cand then redis.call('LPOP', wl)
  else redis.call('LREM', wl, 1, cand) end
  redis.call('ZREM', lvl, entry)
  local finish = tag + 1 / weight
  -- The level's virtual clock follows the start tag of the task sent to service.
  redis.call('HSET', vt, level, math.max(tag, tonumber(redis.call('HGET', vt, level) or '0')))
  if redis.call('LLEN', wl) > 0 then
    redis.call('ZADD', lvl, finish, member(redis.call('LINDEX', wl, 0), user))
  else
    redis.call('HSET', ns .. ':q:fin:' .. level, user, finish)
  end
  redis.call('ZREM', age, cand)
  redis.call('HSET', meta, cand, m .. '|' .. target .. '|' .. aged)
  redis.call('ZADD', rel, now, cand)
  redis.call('ZADD', brk, tonumber(split(m)[4]), cand)
  inflight = inflight + 1
  table.insert(out, {cand, target, aged, 'picked'})
end
return out
"""

# Remove a task that is still waiting (not picked); returns 1 if it was removed.
_CANCEL = """
local id = ARGV[2]
local m = redis.call('HGET', meta, id)
if not m or redis.call('ZSCORE', rel, id) then return 0 end
local f = split(m)
local user, level = f[1], f[2]
local wl = wkey(level, user)
local lvl = ns .. ':q:lvl:' .. level
local entry = member(redis.call('LINDEX', wl, 0), user)
local tag = redis.call('ZSCORE', lvl, entry)
redis.call('LREM', wl, 1, id)
redis.call('ZREM', lvl, entry)
if redis.call('LLEN', wl) > 0 and tag then
  -- Same tag, renamed after the (possibly new) head.
  redis.call('ZADD', lvl, tag, member(redis.call('LINDEX', wl, 0), user))
end
redis.call('ZREM', age, id)
redis.call('HDEL', meta, id)
return 1
"""


@dataclass(frozen=True)
class Release:
    """A task picked for release: publish it to the Celery queue of `target_level`."""

    task_id: str
    target_level: int
    aged: bool
    recovered: bool


def broker_queue_keys() -> list[str]:
    """Return the broker's Redis list of each level queue, level 0 first."""
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    return [f"{prefix}{name}" for name in settings.PQH_LEVEL_QUEUES]


def _pick_args(now: float, max_picks: int, started: str = "") -> list[object]:
    return [
        now,
        settings.PQH_MAX_WAIT_SECONDS,
        settings.PQH_RELEASE_BUFFER,
        settings.PQH_RELEASE_RECOVER_SECONDS,
        max_picks,
        settings.PQH_LEVELS,
        started,
        # A released task never taken within this long was lost with the broker's data
        # (a purge, a flushed Redis); forget it rather than block releases for ever.
        settings.PQH_MAX_WAIT_SECONDS + settings.PQH_VISIBILITY_TIMEOUT,
    ]


def _releases(rows: list) -> list[Release]:
    return [
        Release(
            task_id=r[0], target_level=int(r[1]), aged=r[2] == "1", recovered=r[3] == "recovered"
        )
        for r in rows
    ]


def queue_enqueue(
    *, task_id: str, user_id: int, level: int, weight: int, submitted: float, max_picks: int = 4
) -> list[Release]:
    """Add an accepted task to the fair queue and return what may be released now."""
    script = get_script(_LUA_HELPERS + _ENQUEUE + _PICK)
    rows = script(
        keys=broker_queue_keys(),
        args=[
            settings.PQH_REDIS_PREFIX,
            task_id,
            user_id,
            level,
            weight,
            submitted,
            *_pick_args(submitted, max_picks),
        ],
    )
    return _releases(rows)


def queue_pick(*, now: float | None = None, max_picks: int = 4, started: str = "") -> list[Release]:
    """Pick the tasks that may be released now (a worker took `started`, or time passed)."""
    now = time.time() if now is None else now
    script = get_script(_LUA_HELPERS + _PICK)
    rows = script(
        keys=broker_queue_keys(),
        args=[settings.PQH_REDIS_PREFIX, "", "", "", "", "", *_pick_args(now, max_picks, started)],
    )
    return _releases(rows)


def queue_confirm(task_ids: list[str]) -> None:
    """Forget released tasks whose publish to Celery succeeded."""
    if not task_ids:
        return
    pipe = get_redis().pipeline(transaction=True)
    pipe.zrem(key("q", "rel"), *task_ids)
    pipe.hdel(key("q", "meta"), *task_ids)
    pipe.execute()


def queue_cancel(task_id: str) -> bool:
    """Remove a task that has not been released; return False if it was already released."""
    script = get_script(_LUA_HELPERS + _CANCEL)
    return bool(script(keys=[], args=[settings.PQH_REDIS_PREFIX, task_id]))


def queue_unknown(task_ids: list[str]) -> list[str]:
    """Return the ids the fair queue holds nowhere: neither waiting, releasing, nor released."""
    if not task_ids:
        return []
    pipe = get_redis().pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hexists(key("q", "meta"), task_id)
        pipe.zscore(key("q", "brk"), task_id)
    answers = pipe.execute()
    return [
        task_id
        for task_id, in_meta, in_broker in zip(task_ids, answers[::2], answers[1::2], strict=True)
        if not in_meta and in_broker is None
    ]


def queue_waiting_count() -> int:
    """Return how many tasks wait in the fair queue, not yet released."""
    return int(get_redis().zcard(key("q", "age")))


def queue_broker_lengths() -> list[int]:
    """Return, per level, how many released tasks sit in the broker not yet taken by a worker."""
    pipe = get_redis().pipeline(transaction=False)
    for name in broker_queue_keys():
        pipe.llen(name)
    return [int(n) for n in pipe.execute()]
