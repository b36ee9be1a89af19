"""The benchmark's users and tasks: who waits, who drives wrk, what is submitted."""

from __future__ import annotations

import asyncio
import json
import math

from bench.harness import HIGH_RATE

from .clients import call

# Each waiting user holds at most this many waits (PQH_WAIT_MAX_PER_USER is 100 by default).
WAITS_PER_USER = 50


def ensure_users(prefix: str, count: int) -> list[tuple[int, str]]:
    """Create (once) `count` users named PREFIX_00000…; return (user id, token) each."""
    from rest_framework.authtoken.models import Token

    from users_app.models import Profile
    from users_app.services import api_user_create

    names = [f"{prefix}_{i:05d}" for i in range(count)]
    have = {t.user.username: t for t in Token.objects.filter(user__username__in=names)}
    users = []
    for name in names:
        token = have.get(name)
        if token is None:
            _, token, _ = api_user_create(username=name)
        users.append((token.user_id, token.key))
    Profile.objects.filter(user_id__in=[u for u, _ in users]).update(
        submit_rate=HIGH_RATE, read_rate=HIGH_RATE
    )
    return users


def waiting_users(total: int) -> list[tuple[int, str]]:
    return ensure_users("benchwait", max(1, math.ceil(total / WAITS_PER_USER)))


async def submit_all(host: str, port: int, tokens: list[str], seconds: float) -> list[str]:
    """POST /task once per token (32 at a time) with a task of `seconds`; return the ids."""
    gate = asyncio.Semaphore(32)
    body = json.dumps({"x": {"seconds": seconds}}).encode()

    async def one(token: str) -> str:
        async with gate:
            status, _, answer, _ = await call(host, port, "POST", "/task", token, body)
        if status not in (200, 201, 202):
            raise RuntimeError(f"POST /task answered {status}: {answer[:300]!r}")
        return json.loads(answer)["task_id"]

    return list(await asyncio.gather(*(one(t) for t in tokens)))


def cancel_pending(user_ids: list[int], keep: set[str] = frozenset()) -> int:
    """Cancel these users' queued tasks (what wrk's POSTs left), as the API would."""
    from celery import states

    from tasks_app.models import TaskRecord
    from tasks_app.services.actions import task_cancel_many

    rows = TaskRecord.objects.select_related("user").filter(
        user_id__in=user_ids, status=states.PENDING
    )
    outcome = task_cancel_many(tasks=[r for r in rows if str(r.pk) not in keep])
    return len(outcome.cancelled)


def finished_at(task_ids: list[str]) -> dict[str, float]:
    """Each ended task's finished_at (set in the finish's transaction, just before its commit)."""
    from tasks_app.models import TaskRecord

    rows = TaskRecord.objects.filter(pk__in=task_ids, finished_at__isnull=False)
    return {str(pk): at.timestamp() for pk, at in rows.values_list("pk", "finished_at")}
