"""Publishing: picked tasks go from the fair queue to their level's Celery queue.

"Release" means this and only this: the fair queue picks (fairqueue.queue), these functions
publish each pick to the broker and confirm it.
"""

import logging

import redis
from django.conf import settings

from fairqueue.queue import Release
from pqh_site.celery import app as celery_app
from pqh_site.core import core

from ..models import TaskRecord
from . import notices

logger = logging.getLogger(__name__)

# The Celery task that runs a submission (tasks.run_task), published by name: tasks.py uses
# the services, so the services do not import it.
RUN_TASK = "pqh.run"


def publish(task_id: str, level: int) -> None:
    """Send the task to the Celery queue of `level`."""
    queue = settings.PQH_LEVEL_QUEUES[level]
    # The anonymous exchange routes by queue name directly, with no binding lookup in Redis.
    # No time limits in the message: the worker's own (PQH_TASK_TIME_LIMIT) apply, the ones its
    # visibility timeout was checked against.
    celery_app.send_task(
        RUN_TASK,
        args=[task_id],
        task_id=task_id,
        queue=queue,
        exchange="",
        routing_key=queue,
        time_limit=None,
        soft_time_limit=None,
    )


def task_release(releases: list[Release]) -> int:
    """Publish picked tasks to their level queues and confirm them; return how many went."""
    if not releases:
        return 0
    sent: list[str] = []
    try:
        for release in releases:
            publish(release.task_id, release.target_level)
            sent.append(release.task_id)
    except Exception:
        # What was picked but not published stays in the releasing set and is picked again
        # after PQH_RELEASE_RECOVER_SECONDS.
        logger.exception("publishing released tasks failed; they will be recovered")
    finally:
        try:
            core().queue.confirm(sent)
        except redis.RedisError as exc:
            # Published but not confirmed: published again after PQH_RELEASE_RECOVER_SECONDS
            # (the claim drops the duplicate), or, if Redis lost its data, queued again by the
            # recovery sweep. Either way the release happened: this is no caller's failure.
            logger.warning("could not confirm %d released tasks: %s", len(sent), exc)
    aged = [r.task_id for r in releases if r.aged and r.task_id in sent]
    if aged:
        TaskRecord.objects.filter(pk__in=aged).update(aged=True)
    return len(sent)


def task_release_due(*, now: float | None = None, started: str = "") -> int:
    """Release whatever the fair queue allows now (a worker took `started`, or time passed)."""
    if not settings.PQH_FAIRNESS:
        return 0
    return task_release(core().queue.pick(now=now, started=started))


def task_started_release(*, started: str, claimed: bool) -> int:
    """A worker took `started` from the broker: announce its start and release the next tasks.

    The notice (if this delivery's claim won, and it has committed) and the pick that the free
    place in the broker allows go to Redis in one round trip; then each pick is published and
    confirmed (task_release). Each is best effort: a notice that fails is logged (waiters
    re-read PostgreSQL), and a pick that fails is made by the worker's tick instead.
    """
    the_core = core()
    batch = the_core.batch()
    if claimed:
        notices.add_to(batch, started, notices.STARTED)
    if settings.PQH_FAIRNESS:
        the_core.queue.pick(started=started, batch=batch)
    try:
        answers = batch.execute(raise_on_error=False)
    except redis.RedisError as exc:
        logger.warning(
            "announcing and releasing after %s failed: %s; the tick releases", started, exc
        )
        return 0
    if claimed and isinstance(answers[0], Exception):
        logger.warning("could not announce that task %s started: %s", started, answers[0])
    if not settings.PQH_FAIRNESS:
        return 0
    picked = answers[-1]
    if isinstance(picked, Exception):
        logger.warning(
            "releasing after %s failed: %s; the worker tick will release", started, picked
        )
        return 0
    return task_release(picked)
