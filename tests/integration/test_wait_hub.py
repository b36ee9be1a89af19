"""The wait server's hub: one subscription wakes the right waiters, a lost one wakes them all,
and no wait outlives its seconds (the real Redis, and a private one that the test stops)."""

import asyncio
import json
import time

import redis

from fairqueue.testing import PrivateRedis
from pqh_site.core import core
from tasks_app.waits.hub import FALLBACK_SECONDS, Hub
from tasks_app.waits.views import _wait_for_end


async def connected(hub: Hub) -> None:
    hub.start()
    for _ in range(100):
        if hub.connected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the hub did not subscribe")


def notice(client: redis.Redis, channel: str, task: str) -> None:
    client.publish(channel, json.dumps({"task": task, "kind": "ended"}))


def test_a_notice_wakes_the_waiters_of_its_task_only():
    the_core = core()
    channel = the_core.keys.notices

    async def scenario():
        hub = Hub(the_core.config.redis_url, channel)
        await connected(hub)
        async with hub.waiter("a") as a, hub.waiter("a") as a2, hub.waiter("b") as b:
            notice(the_core.redis, channel, "a")
            woken = await asyncio.gather(a.moved(2), a2.moved(2), b.moved(0.3))
        return woken

    assert asyncio.run(scenario()) == [True, True, False]


def test_an_end_between_the_first_read_and_the_wait_is_seen_at_once():
    the_core = core()
    channel = the_core.keys.notices

    async def scenario():
        hub = Hub(the_core.config.redis_url, channel)
        await connected(hub)
        reads = []

        async def read():
            reads.append(time.monotonic())
            if len(reads) == 1:
                # The task ends (and is announced) while the first read's answer is on its way.
                notice(the_core.redis, channel, "t")
                return "PENDING"
            return "SUCCESS"

        started = time.monotonic()
        async with hub.waiter("t") as waiter:
            answer = await _wait_for_end(waiter, read, lambda s: s == "SUCCESS", 20)
        return answer, time.monotonic() - started, len(reads)

    answer, took, reads = asyncio.run(scenario())
    assert (answer, reads) == ("SUCCESS", 2)
    assert took < 1.0  # woken by the notice, not by the 20 s timeout


def test_no_wait_outlives_its_seconds_with_or_without_notices():
    async def scenario(url: str):
        hub = Hub(url, "{nowhere}:notices")

        async def read():
            return "PENDING"

        started = time.monotonic()
        async with hub.waiter("t") as waiter:
            answer = await _wait_for_end(waiter, read, lambda s: s == "SUCCESS", 0.6)
        return answer, time.monotonic() - started

    for url in (core().config.redis_url, "redis://127.0.0.1:1/0"):  # subscribed; unreachable
        answer, took = asyncio.run(scenario(url))
        assert answer == "PENDING" and 0.55 < took < 1.5, (url, took)


def test_a_lost_subscription_wakes_every_waiter_and_they_re_read_until_it_is_back(tmp_path):
    private = PrivateRedis(tmp_path / "redis").start()
    try:

        async def scenario():
            hub = Hub(private.url, "{p}:notices")
            await connected(hub)
            async with hub.waiter("a") as a, hub.waiter("b") as b:
                private.stop()
                woken = await asyncio.gather(a.moved(5), b.moved(5))
                # While notices are down, a wait wakes every FALLBACK_SECONDS to re-read.
                started = time.monotonic()
                again = await a.moved(10)
                fallback = time.monotonic() - started
                private.start()
                for _ in range(200):
                    if hub.connected:
                        break
                    await asyncio.sleep(0.05)
                return woken, again, fallback, hub.connected

        woken, again, fallback, back = asyncio.run(scenario())
    finally:
        private.stop()
    assert woken == [True, True]
    assert again and fallback <= FALLBACK_SECONDS + 0.5
    assert back
