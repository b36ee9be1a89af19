"""Each Redis script, called directly with its documented KEYS and ARGV on the real Redis."""

import json
import re

import pytest
from django.conf import settings

from tasks_app import scheduler
from tasks_app.redis_client import LUA_DIR, get_redis, get_script, key, lua_source

from .test_fair_queue import own_prefix  # noqa: F401  (keys of its own, no worker takes them)

SCRIPTS = sorted(p.stem for p in LUA_DIR.glob("*.lua"))
L = settings.PQH_LEVELS


@pytest.fixture
def redis():
    return get_redis()


def run(name: str, keys: list[str], args: list) -> object:
    return get_script(name)(keys=keys, args=args)


def queue_args(**fields) -> str:
    base = {
        "prefix": settings.PQH_REDIS_PREFIX,
        "now": 1000.0,
        "levels": L,
        "max_wait": 600.0,
        "buffer": 1,
        "recover_after": 10.0,
        "max_picks": 0,
    }
    return json.dumps({**base, **fields})


def task(seq: int, user: int = 1, level: int = 0, weight: int = 1, submitted: float = 999.0):
    return {
        "id": f"t{seq}",
        "seq": seq,
        "user": user,
        "level": level,
        "weight": weight,
        "submitted": submitted,
    }


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_opens_with_a_header_naming_its_arguments_and_answer(name):
    text = (LUA_DIR / f"{name}.lua").read_text()
    header = text.split("]]", 1)[0]
    assert header.startswith(f"--[[ {name}.lua: ")
    assert "ARGV[1]" in header and "Returns" in header
    if name not in ("cancel",):
        assert "KEYS[1" in header


def test_includes_are_inlined_once_and_a_missing_one_is_an_error(tmp_path, monkeypatch):
    source = lua_source("enqueue")
    assert "--- @include" not in source
    assert source.count("local function queue_keys(") == 1
    (tmp_path / "includes").mkdir()
    (tmp_path / "broken.lua").write_text('--- @include "nowhere"\nreturn 1\n')
    monkeypatch.setattr("tasks_app.redis_client.LUA_DIR", tmp_path)
    lua_source.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="nowhere"):
            lua_source("broken")
    finally:
        lua_source.cache_clear()


def test_window_record_counts_then_records(redis):
    win = key("win", 1)
    assert [run("window_record", [win], [1000 + i, 60, f"m{i}"]) for i in range(3)] == [0, 1, 2]
    assert run("window_record", [win], [1061.5, 60, "late"]) == 1  # m0 and m1 have left
    assert 0 < redis.pttl(win) <= 60_000


def test_window_count_drops_old_entries_and_records_nothing(redis):
    win = key("win", 2)
    redis.zadd(win, {"a": 1000, "b": 1050})
    assert run("window_count", [win], [1070, 60]) == 1
    assert redis.zrange(win, 0, -1) == ["b"]


def admit_keys(user: int, idem: str = "") -> list[str]:
    keys = [key("win", user), key("act", user), key("q", "admitting"), key("q", "aged")]
    keys += [key("q", "rel"), *scheduler.level_keys(), *scheduler.broker_queue_keys()]
    return keys + ([key("idem", user, idem)] if idem else [])


def admit(user: int, task_id: str, *, cap: int = 10, max_queued: int = 100, idem: str = ""):
    args = {
        "task_id": task_id,
        "now": 1000.0,
        "levels": L,
        "window_seconds": 60,
        "user_cap": cap,
        "max_queued": max_queued,
        "idempotency_seconds": 86400,
        "abandon_after": 30,
    }
    return run("admit", admit_keys(user, idem), [json.dumps(args)])


def test_admit_counts_admits_and_refuses_by_the_cap_then_the_bound(redis):
    assert admit(1, "a", cap=2) == ["admitted", 0]
    assert admit(1, "b", cap=2) == ["admitted", 1]
    assert admit(1, "c", cap=2) == ["user_cap", 2]
    assert redis.zrange(key("act", 1), 0, -1) == ["a", "b"]
    assert redis.zcard(key("q", "admitting")) == 2
    redis.lpush(scheduler.broker_queue_keys()[3], "released")
    assert admit(2, "d", max_queued=3) == ["queue_full", 3]
    assert redis.zcard(key("win", 2)) == 0 and not redis.exists(key("act", 2))


def test_admit_answers_a_known_key_before_any_limit(redis):
    assert admit(1, "first", idem="k") == ["admitted", 0]
    assert redis.get(key("idem", 1, "k")).startswith("p|first|")
    assert admit(1, "retry", idem="k") == ["in_progress", "first"]
    redis.set(key("idem", 1, "k"), "d|first")
    assert admit(1, "retry", cap=0, idem="k") == ["replay", "first"]
    assert redis.zcard(key("win", 1)) == 1


def test_unadmit_takes_everything_back_and_frees_only_its_own_key(redis):
    admit(1, "a", idem="k")
    unadmit_keys = admit_keys(1, "k")[:3] + [key("idem", 1, "k")]
    args = {"task_id": "other", "idempotency_seconds": 60}
    run("unadmit", unadmit_keys, [json.dumps(args)])
    assert redis.exists(key("idem", 1, "k"))  # another task's key is left alone
    run("unadmit", unadmit_keys, [json.dumps({**args, "task_id": "a"})])
    assert not redis.exists(key("idem", 1, "k"))
    assert redis.zcard(key("win", 1)) == redis.zcard(key("act", 1)) == 0
    run("unadmit", unadmit_keys, [json.dumps({**args, "task_id": "a", "replay_id": "old"})])
    assert redis.get(key("idem", 1, "k")) == "d|old"


def test_enqueue_tags_ages_completes_admissions_and_is_idempotent(redis):
    admit(1, "t1", idem="k")
    first = {**task(1), "idem": key("idem", 1, "k"), "idem_ttl": 50}
    old = task(2, submitted=10.0)  # waited far past the bound: straight to the aged set
    pos, added, releases = run(
        "enqueue", scheduler.broker_queue_keys(), [queue_args(tasks=[first, old], position=True)]
    )
    assert [pos, added, releases] == [1, 2, []]
    assert redis.zscore(key("q", "lvl", 0), scheduler.member(1)) == 0
    assert redis.zscore(key("q", "aged"), scheduler.member(2)) == 10.0
    assert redis.get(key("idem", 1, "k")) == "d|t1" and 0 < redis.ttl(key("idem", 1, "k")) <= 50
    assert redis.zcard(key("q", "admitting")) == 0
    again = run("enqueue", scheduler.broker_queue_keys(), [queue_args(tasks=[first, old])])
    assert again == [-1, 0, []]


def test_pick_releases_the_aged_first_then_by_level_within_the_buffer(redis):
    run("enqueue", scheduler.broker_queue_keys(), [queue_args(tasks=[task(1, level=2)])])
    run("enqueue", scheduler.broker_queue_keys(), [queue_args(tasks=[task(2, submitted=1.0)])])
    picked = run("pick", scheduler.broker_queue_keys(), [queue_args(max_picks=4, started="")])
    assert picked == [["t2", "0", "1", "picked"]]  # the buffer (1) is full after one
    assert redis.hget(key("q", "out"), "t2") == "0|1"
    redis.zrem(key("q", "rel"), "t2")  # confirmed, and a worker took it:
    args = queue_args(max_picks=4, started="t2")
    assert run("pick", scheduler.broker_queue_keys(), [args]) == [["t1", "2", "0", "picked"]]


def test_cancel_removes_a_waiting_task_and_moves_the_users_later_ones_up(redis):
    tasks = [task(1, weight=2), task(2, weight=2), task(3, weight=2)]
    run("enqueue", scheduler.broker_queue_keys(), [queue_args(tasks=tasks)])
    cancel = {"prefix": settings.PQH_REDIS_PREFIX, "levels": L, "id": "t1", "seq": 1, "level": 0}
    assert run("cancel", [], [json.dumps(cancel)]) == 1
    tags = redis.zrange(key("q", "lvl", 0), 0, -1, withscores=True)
    assert tags == [(scheduler.member(2), 0.0), (scheduler.member(3), 0.5)]
    assert redis.zscore(key("q", "fin", 0), "1") == 1.0
    assert run("cancel", [], [json.dumps(cancel)]) == 0


def test_positions_answers_per_task_and_minus_one_when_unknown(redis):
    tasks = [task(1, level=1), task(2, level=0), task(3, user=2, level=1)]
    run("enqueue", scheduler.broker_queue_keys(), [queue_args(tasks=tasks)])
    asked = [["t1", 1, 1], ["t2", 2, 0], ["t3", 3, 1], ["nope", 99, 0]]
    answer = run("positions", scheduler.broker_queue_keys(), [queue_args(tasks=asked)])
    assert answer == [1, 0, 2, -1]


def test_script_files_are_named_by_action():
    assert all(re.fullmatch(r"[a-z_]+", name) for name in SCRIPTS)
    assert {"admit", "unadmit", "enqueue", "pick", "cancel", "positions"} <= set(SCRIPTS)
    assert {"window_record", "window_count"} <= set(SCRIPTS)
