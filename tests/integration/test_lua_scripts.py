"""Each Redis script, called directly with its documented KEYS and ARGV on the real Redis."""

import json
import re

import pytest
from django.conf import settings

from fairqueue.queue import member
from fairqueue.scripts import LUA_DIR, lua_source
from pqh_site.core import core

from .test_fair_queue import own_prefix  # noqa: F401  (keys of its own, no worker takes them)

SCRIPTS = sorted(p.stem for p in LUA_DIR.glob("*.lua"))
L = settings.PQH_LEVELS


@pytest.fixture
def redis():
    return core().redis


def run(name: str, keys: list[str], args: list) -> object:
    return core().scripts[name](keys=keys, args=args)


def queue_args(**fields) -> str:
    base = {
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
    assert "KEYS[1" in header


def test_includes_are_inlined_once_and_a_missing_one_is_an_error(tmp_path, monkeypatch):
    source = lua_source("enqueue")
    assert "--- @include" not in source
    assert source.count("local function queue_keys(") == 1
    (tmp_path / "includes").mkdir()
    (tmp_path / "broken.lua").write_text('--- @include "nowhere"\nreturn 1\n')
    monkeypatch.setattr("fairqueue.scripts.LUA_DIR", tmp_path)
    lua_source.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="nowhere"):
            lua_source("broken")
    finally:
        lua_source.cache_clear()


def test_window_count_drops_old_entries_and_records_nothing(redis):
    win = core().keys.key("win", 2)
    redis.zadd(win, {"a": 1000, "b": 1050})
    assert run("window_count", [win], [1070, 60]) == 1
    assert redis.zrange(win, 0, -1) == ["b"]


def QK() -> list[str]:
    """The fair queue's keys, in the order every queue script takes them."""
    return list(core().keys.queue)


def admit_keys(user: int, idem: str = "") -> list[str]:
    keys = [
        *QK(),
        core().keys.key("win", user),
        core().keys.key("act", user),
        core().keys.key("wc", user),
        core().keys.key("est", user),
    ]
    return keys + ([core().keys.key("idem", user, idem)] if idem else [])


def admit(
    user: int,
    task_id: str,
    *,
    cap: int = 10,
    max_queued: int = 100,
    idem: str = "",
    charge: str = "tasks",
    now: float = 1000.0,
):
    args = {
        "task_id": task_id,
        "now": now,
        "levels": L,
        "charge": charge,
        "default_cost": 7.5,
        "window_seconds": 60,
        "user_cap": cap,
        "max_queued": max_queued,
        "idempotency_seconds": 86400,
        "abandon_after": 30,
    }
    return run("admit", admit_keys(user, idem), [json.dumps(args)])


def test_queue_keys_share_one_hash_tag_and_follow_the_documented_order():
    keys = QK()
    assert len(keys) == 10 + 9 * L
    assert keys[:10] == [
        core().keys.key("q", n)
        for n in ("task", "aged", "vt", "out", "rel", "brk", "admitting", "grp", "teams", "hold")
    ]
    assert keys[10:18] == [
        core().keys.key("q", n, 0) for n in ("lvl", "age", "fin", "uw", "in", "mf", "tw", "tv")
    ]
    assert keys[-L:] == list(core().config.broker_queues)
    tag = "{" + settings.PQH_REDIS_PREFIX + "}"
    assert all(k.startswith(tag + ":") for k in keys)


def test_admit_counts_admits_and_refuses_by_the_cap_then_the_bound(redis):
    assert admit(1, "a", cap=2) == ["admitted", 0, "0", "1"]
    assert admit(1, "b", cap=2) == ["admitted", 1, "1", "1"]
    assert admit(1, "c", cap=2) == ["user_cap", 2]
    assert redis.zrange(core().keys.key("act", 1), 0, -1) == ["a", "b"]
    assert redis.zcard(core().keys.key("q", "admitting")) == 2
    redis.lpush(list(core().config.broker_queues)[3], "released")
    assert admit(2, "d", max_queued=3) == ["queue_full", 3]
    assert redis.zcard(core().keys.key("win", 2)) == 0 and not redis.exists(
        core().keys.key("act", 2)
    )
    assert not redis.exists(core().keys.key("wc", 1))  # counting tasks keeps no charges


def test_admit_by_time_charges_the_default_then_the_users_mean(redis):
    assert admit(1, "a", charge="time") == ["admitted", 0, "0", "7.5"]
    assert admit(1, "b", charge="time") == ["admitted", 1, "7.5", "7.5"]
    redis.hset(core().keys.key("est", 1), mapping={"n": 3, "mean": "0.25"})
    assert admit(1, "c", charge="time") == ["admitted", 2, "15", "0.25"]
    assert redis.hgetall(core().keys.key("wc", 1)) == {
        "a": "7.5",
        "b": "7.5",
        "c": "0.25",
        "sum": "15.25",
    }
    # Thirty seconds on, a and b... still count; past the 60 s window they leave with their charge.
    assert admit(1, "d", charge="time", now=1061.0) == ["admitted", 0, "0", "0.25"]
    assert redis.hgetall(core().keys.key("wc", 1)) == {"d": "0.25", "sum": "0.25"}


def test_admit_answers_a_known_key_before_any_limit(redis):
    assert admit(1, "first", idem="k")[:2] == ["admitted", 0]
    assert redis.get(core().keys.key("idem", 1, "k")).startswith("p|first|")
    assert admit(1, "retry", idem="k") == ["in_progress", "first"]
    redis.set(core().keys.key("idem", 1, "k"), "d|first")
    assert admit(1, "retry", cap=0, idem="k") == ["replay", "first"]
    assert redis.zcard(core().keys.key("win", 1)) == 1


def test_unadmit_takes_everything_back_and_frees_only_its_own_key(redis):
    admit(1, "a", idem="k", charge="time")
    unadmit_keys = [
        core().keys.key("win", 1),
        core().keys.key("act", 1),
        core().keys.key("q", "admitting"),
        core().keys.key("wc", 1),
    ]
    unadmit_keys.append(core().keys.key("idem", 1, "k"))
    args = {"task_id": "other", "idempotency_seconds": 60}
    run("unadmit", unadmit_keys, [json.dumps(args)])
    assert redis.exists(core().keys.key("idem", 1, "k"))  # another task's key is left alone
    run("unadmit", unadmit_keys, [json.dumps({**args, "task_id": "a"})])
    assert not redis.exists(core().keys.key("idem", 1, "k"))
    assert redis.zcard(core().keys.key("win", 1)) == redis.zcard(core().keys.key("act", 1)) == 0
    assert redis.hgetall(core().keys.key("wc", 1)) == {"sum": "0"}  # its charge left with it
    run("unadmit", unadmit_keys, [json.dumps({**args, "task_id": "a", "replay_id": "old"})])
    assert redis.get(core().keys.key("idem", 1, "k")) == "d|old"


def enqueue(tasks, extra_keys=(), **fields):
    return run("enqueue", [*QK(), *extra_keys], [queue_args(tasks=tasks, **fields)])


def test_enqueue_tags_ages_completes_admissions_and_is_idempotent(redis):
    admit(1, "t1", idem="k")
    first = {**task(1), "idem": 11 + 9 * L, "idem_ttl": 50}  # the index of its key in KEYS
    old = task(2, submitted=10.0)  # waited far past the bound: straight to the aged set
    idem = [core().keys.key("idem", 1, "k")]
    pos, added, releases = enqueue([first, old], idem, position=True)
    assert [pos, added, releases] == [1, 2, []]
    assert redis.zscore(core().keys.key("q", "lvl", 0), member(1)) == 0
    assert redis.zscore(core().keys.key("q", "aged"), member(2)) == 10.0
    assert redis.zrange(core().keys.key("q", "uw", 0), 0, -1) == [f"1:{member(1)}"]
    assert redis.hget(core().keys.key("q", "task"), member(1)) == "t1|1|1|1"
    assert (
        redis.get(core().keys.key("idem", 1, "k")) == "d|t1"
        and 0 < redis.ttl(core().keys.key("idem", 1, "k")) <= 50
    )
    assert redis.zcard(core().keys.key("q", "admitting")) == 0
    assert enqueue([first, old], idem) == [-1, 0, []]


def test_enqueue_spaces_a_users_tasks_by_cost_over_weight(redis):
    enqueue([{**task(1, weight=2), "cost": 3.0}, {**task(2, weight=2), "cost": 0.5}])
    enqueue([{**task(3, user=2, weight=1), "cost": 1.0}])
    tags = redis.zrange(core().keys.key("q", "lvl", 0), 0, -1, withscores=True)
    m = member
    assert tags == [(m(1), 0.0), (m(3), 0.0), (m(2), 1.5)]
    assert redis.zscore(core().keys.key("q", "fin", 0), "1") == 1.75


def test_pick_releases_the_aged_first_then_by_level_within_the_buffer(redis):
    enqueue([task(1, level=2)])
    enqueue([task(2, submitted=1.0)])
    picked = run("pick", QK(), [queue_args(max_picks=4, started="")])
    assert picked == [["t2", "0", "1", "picked"]]  # the buffer (1) is full after one
    assert redis.hget(core().keys.key("q", "out"), "t2") == "0|1|1"  # target, aged, release number
    redis.zrem(core().keys.key("q", "rel"), "t2")  # confirmed, and a worker took it:
    args = queue_args(max_picks=4, started="t2")
    assert run("pick", QK(), [args]) == [["t1", "2", "0", "picked"]]
    assert redis.zcard(core().keys.key("q", "uw", 2)) == 0  # it left the user index with its level


def cancel_args(**fields) -> str:
    return json.dumps({"levels": L, "id": "t1", "seq": 1, "level": 0, "refund": False, **fields})


def test_cancel_removes_a_waiting_task_and_moves_the_users_later_ones_up(redis):
    tasks = [task(1, weight=2), task(2, weight=2), task(3, weight=2)]
    enqueue(tasks)
    keys = [*QK(), core().keys.key("win", 1), core().keys.key("wc", 1)]
    assert run("cancel", keys, [cancel_args()]) == 1
    tags = redis.zrange(core().keys.key("q", "lvl", 0), 0, -1, withscores=True)
    assert tags == [(member(2), 0.0), (member(3), 0.5)]
    assert redis.zscore(core().keys.key("q", "fin", 0), "1") == 1.0
    assert run("cancel", keys, [cancel_args()]) == 0


def test_cancel_with_refund_takes_the_charge_out_of_the_window_even_once_released(redis):
    admit(1, "t1", charge="time")
    admit(1, "t2", charge="time")
    keys = [*QK(), core().keys.key("win", 1), core().keys.key("wc", 1)]
    assert run("cancel", keys, [cancel_args(refund=True)]) == 0  # not queued: refund only
    assert redis.hgetall(core().keys.key("wc", 1)) == {"t2": "7.5", "sum": "7.5"}
    assert redis.zrange(core().keys.key("win", 1), 0, -1) == ["t2"]


def settle(user: int, task_id: str, *, level=0, weight=1, charged=1.0, seconds=1.0):
    keys = [
        *QK(),
        core().keys.key("win", user),
        core().keys.key("wc", user),
        core().keys.key("est", user),
    ]
    args = {"levels": L, "id": task_id, "user": user, "level": level, "weight": weight}
    args.update(charged=charged, seconds=seconds, keep=3600)
    return run("settle", keys, [json.dumps(args)])


def test_settle_corrects_the_window_the_users_waiting_tags_and_learns_the_mean(redis):
    admit(1, "t0", charge="time")  # charged 7.5 s
    enqueue([{**task(1, weight=2), "cost": 7.5}, {**task(2, weight=2), "cost": 7.5}])
    enqueue([{**task(3, user=2), "cost": 1.0}])
    # t0 ran 1.5 s, not 7.5: user 1's waiting tasks and finish tag move by -6 / 2.
    assert settle(1, "t0", weight=2, charged=7.5, seconds=1.5) == [1, "1.5"]
    assert redis.hgetall(core().keys.key("wc", 1)) == {"t0": "1.5", "sum": "1.5"}
    m = member
    tags = redis.zrange(core().keys.key("q", "lvl", 0), 0, -1, withscores=True)
    assert tags == [(m(1), -3.0), (m(3), 0.0), (m(2), 0.75)]
    assert redis.zscore(core().keys.key("q", "fin", 0), "1") == 4.5
    assert redis.zscore(core().keys.key("q", "fin", 0), "2") == 1.0  # another user's tags stay
    # The mean: plain over the first five runs, then weighted 1/5.
    for seconds in (2.5, 2.0, 3.0, 1.0):
        settle(1, "gone", seconds=seconds)
    assert redis.hget(core().keys.key("est", 1), "mean") == "2"
    assert (
        0 < redis.ttl(core().keys.key("est", 1)) <= 3600
    )  # forgotten an idle while after the last run
    assert settle(1, "gone", seconds=7.0)[1] == "3"
    assert settle(1, "gone", charged=3.0, seconds=3.0) == [0, "3"]  # left the window: no change


def test_reweight_respaces_the_users_waiting_tasks_keeping_the_first_tag(redis):
    enqueue([task(1), task(2), task(3)])  # user 1, weight 1: tags 0, 1, 2
    enqueue([{**task(4, level=1), "cost": 2.0}, {**task(5, level=1), "cost": 2.0}])
    assert run("reweight", QK(), [json.dumps({"levels": L, "user": 1, "weight": 4})]) == 5
    m = member
    assert redis.zrange(core().keys.key("q", "lvl", 0), 0, -1, withscores=True) == [
        (m(1), 0.0),
        (m(2), 0.25),
        (m(3), 0.5),
    ]
    assert redis.zrange(core().keys.key("q", "lvl", 1), 0, -1, withscores=True) == [
        (m(4), 0.0),
        (m(5), 0.5),
    ]
    assert redis.zscore(core().keys.key("q", "fin", 0), "1") == 0.75
    assert redis.zscore(core().keys.key("q", "fin", 1), "1") == 1.0
    assert redis.hget(core().keys.key("q", "task"), m(5)) == "t5|1|4|2"


def test_window_usage_answers_count_charge_and_entries(redis):
    admit(1, "a", charge="time")
    redis.hset(core().keys.key("est", 1), "mean", "0.5")
    admit(1, "b", charge="time", now=1010.0)
    args = {"now": 1020.0, "seconds": 60, "charge": "time"}
    answer = run(
        "window_usage", [core().keys.key("win", 1), core().keys.key("wc", 1)], [json.dumps(args)]
    )
    assert answer == [2, "8", ["1000", "7.5", "1010", "0.5"]]
    args = {"now": 1065.0, "seconds": 60, "charge": "tasks"}
    answer = run(
        "window_usage", [core().keys.key("win", 1), core().keys.key("wc", 1)], [json.dumps(args)]
    )
    assert answer == [1, "1", ["1010", "1"]]
    # With the active set: the tasks the cap counts, in the same answer (both still active).
    keys = [core().keys.key("win", 1), core().keys.key("wc", 1), core().keys.key("act", 1)]
    assert run("window_usage", keys, [json.dumps(args)]) == [1, "1", ["1010", "1"], 2]


def test_positions_answers_per_task_and_minus_one_when_unknown(redis):
    tasks = [task(1, level=1), task(2, level=0), task(3, user=2, level=1)]
    enqueue(tasks)
    enqueue([task(4, submitted=1.0)])  # aged
    asked = [["t1", 1, 1], ["t2", 2, 0], ["t3", 3, 1], ["nope", 99, 0], ["t4", 4, 0]]
    answer = run("positions", QK(), [queue_args(tasks=asked)])
    assert answer == [[2, 0], [1, 0], [3, 0], [-1, 0], [0, 1]]


def test_script_files_are_named_by_action():
    assert all(re.fullmatch(r"[a-z_]+", name) for name in SCRIPTS)
    assert {"admit", "unadmit", "enqueue", "pick", "cancel", "positions"} <= set(SCRIPTS)
    assert {"settle", "reweight", "rate", "window_count", "window_usage"} <= set(SCRIPTS)


def test_queue_scripts_build_no_key_names_of_their_own():
    # Every key a script touches comes in KEYS (Redis Cluster needs them declared).
    for name in SCRIPTS:
        source = lua_source(name)
        assert "a.prefix" not in source and ":q:'" not in source, name
