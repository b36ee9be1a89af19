"""One subscriber per process, fanned out to the requests waiting in it.

The wait server's process holds one Redis connection subscribed to the notices channel
(services/notices.py). Each waiting request registers an asyncio.Event under its task's id; a
notice for that id sets the events, and each request re-reads PostgreSQL, which stays the
truth. A waiter registers before it first reads the task, so a task that ends between that
read and the notice is seen either way. When the subscription is lost (Redis restarted, the
network cut) every waiter is woken to re-read, and until it is back waiters re-read every
FALLBACK_SECONDS instead of missing an end; after a reconnection they re-read once more (a
notice may have been sent while nobody listened).
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

# While the subscription is down, a waiter looks at PostgreSQL this often.
FALLBACK_SECONDS = 1.0


class Hub:
    """The waiters of one process, and the subscription that wakes them."""

    def __init__(self, url: str, channel: str):
        self.url, self.channel = url, channel
        self.connected = False
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start the subscription in the running loop, once."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen())

    @property
    def waiting(self) -> int:
        """How many waiters are registered now."""
        return sum(len(events) for events in self._waiters.values())

    @asynccontextmanager
    async def waiter(self, task_id: str) -> AsyncIterator["Waiter"]:
        """Register a waiter for `task_id` for the block (before its first read of the task)."""
        self.start()
        event = asyncio.Event()
        self._waiters.setdefault(task_id, set()).add(event)
        try:
            yield Waiter(self, event)
        finally:
            events = self._waiters.get(task_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[task_id]

    def wake(self, task_id: str) -> None:
        for event in self._waiters.get(task_id, ()):
            event.set()

    def wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            client = aioredis.Redis.from_url(self.url, decode_responses=True)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    if not self.connected:
                        self.connected, delay = True, 0.1
                        self.wake_all()  # notices sent while nobody listened: re-read
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._notice(message.get("data"))
            except (redis.RedisError, OSError) as exc:
                if self.connected:
                    logger.warning("notices unavailable (%s): waiters re-read PostgreSQL", exc)
                self.connected = False
                self.wake_all()
            finally:
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _notice(self, data: str | None) -> None:
        try:
            task_id = json.loads(data or "")["task"]
        except (ValueError, KeyError, TypeError):
            return
        self.wake(str(task_id))


class Waiter:
    """One request's wait for its task to move."""

    def __init__(self, hub: Hub, event: asyncio.Event):
        self.hub, self.event = hub, event

    async def moved(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a notice (or a lost subscription); True if woken.

        While the subscription is down, wake at least every FALLBACK_SECONDS to re-read.
        """
        if timeout <= 0:
            return False
        if not self.hub.connected:
            timeout = min(timeout, FALLBACK_SECONDS)
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return not self.hub.connected  # re-read while notices are down
        self.event.clear()
        return True
