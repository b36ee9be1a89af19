"""What users and operators do to tasks once accepted: cancel, reweight the backlog (of a user
or a team), prune."""

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from celery import states
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_results.models import TaskResult

from pqh_site.celery import app as celery_app
from pqh_site.core import core

from ..models import FINAL_STATES, TaskRecord
from . import notices
from .runs import task_free_place

logger = logging.getLogger(__name__)


class TaskNotCancellable(ValueError):
    """The task has already started or ended."""


def task_cancel(*, user, task_id: uuid.UUID) -> TaskRecord:
    """Cancel a task of `user` that has not started; raise TaskNotCancellable otherwise."""
    with transaction.atomic():
        cancelled = TaskRecord.objects.filter(pk=task_id, user=user, status=states.PENDING).update(
            status=states.REVOKED, finished_at=timezone.now()
        )
        if not cancelled:
            raise TaskNotCancellable("the task has already started or ended")
        celery_app.backend.store_result(str(task_id), None, states.REVOKED)
        notices.announce(task_id, notices.ENDED)
    record = TaskRecord.objects.get(pk=task_id)
    if settings.PQH_FAIRNESS:
        # Best effort: if it was already released, the worker's claim sees REVOKED and drops it.
        try:
            core().queue.cancel(
                task_id=str(task_id),
                seq=record.queue_seq,
                level=record.level,
                user_id=record.user_id,
                refund=record.charge == "time",
            )
        except redis.RedisError:
            logger.warning("cancelled task %s stays in the fair queue until picked", task_id)
    task_free_place(task_id=str(task_id), user_id=record.user_id)
    return record


def task_reweight_backlog(
    *, user_id: int, weight: int, team: str | None = None, team_weight: int = 1
) -> None:
    """Let a user's new weight (and, given `team`, its team: "" for none) reach its waiting
    tasks, after the change commits; a user moved to another team takes them along
    (fairqueue/lua/set_team.lua).

    The fair queue respaces them (fairqueue/lua/reweight.lua): within their levels they are served at the
    new weight from the next pick on. Best effort: if Redis is down they keep the old spacing,
    and the user's new submissions use the new weight.
    """

    def reweight() -> None:
        if not settings.PQH_FAIRNESS:
            return
        try:
            if team is not None:
                core().queue.set_team(
                    user_id=user_id, team=team, weight=weight, team_weight=team_weight
                )
            core().queue.reweight(user_id=user_id, weight=weight)
        except redis.RedisError as exc:
            logger.warning(
                "could not apply the new weight of user %s to its queue: %s", user_id, exc
            )

    transaction.on_commit(reweight)


def task_reweight_team_backlog(*, team: str, weight: int) -> None:
    """Let a team's new weight reach its members' waiting tasks, after the change commits
    (fairqueue/lua/reweight_team.lua). Best effort, as task_reweight_backlog."""

    def reweight() -> None:
        if not settings.PQH_FAIRNESS:
            return
        try:
            core().queue.reweight_team(team=team, weight=weight)
        except redis.RedisError as exc:
            logger.warning("could not apply the new weight of team %s to its queue: %s", team, exc)

    transaction.on_commit(reweight)


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancellation of many tasks did: the ids cancelled, and how many had started."""

    cancelled: list[uuid.UUID]
    not_cancellable: int


def task_cancel_many(*, tasks: Iterable[TaskRecord]) -> CancelOutcome:
    """Cancel each of `tasks` that has not started, one by one through task_cancel.

    For the admin's action and `manage.py cancel_queued`: each task is cancelled exactly as the
    API cancels it, and a task that started meanwhile is counted, not an error.
    """
    cancelled: list[uuid.UUID] = []
    not_cancellable = 0
    for record in tasks:
        try:
            task_cancel(user=record.user, task_id=record.pk)
        except TaskNotCancellable:
            not_cancellable += 1
        else:
            cancelled.append(record.pk)
    return CancelOutcome(cancelled=cancelled, not_cancellable=not_cancellable)


def task_prune(
    *,
    now: datetime | None = None,
    days: int | None = None,
    batch: int | None = None,
    max_batches: int = 100,
) -> int:
    """Delete finished tasks older than `days` (PQH_HISTORY_DAYS); return how many went.

    History rows and their stored results go together, `batch` (PQH_PRUNE_BATCH) tasks per
    transaction, oldest first, at most `max_batches` batches per call (the next run goes on).
    Queued and running tasks are never touched, however old.
    """
    now = timezone.now() if now is None else now
    days = settings.PQH_HISTORY_DAYS if days is None else days
    batch = settings.PQH_PRUNE_BATCH if batch is None else batch
    expired = TaskRecord.objects.filter(
        status__in=FINAL_STATES, finished_at__lt=now - timedelta(days=days)
    )
    pruned = 0
    for _ in range(max_batches):
        with transaction.atomic():
            ids = list(expired.order_by("finished_at").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            TaskResult.objects.filter(task_id__in=[str(pk) for pk in ids]).delete()
            pruned += TaskRecord.objects.filter(pk__in=ids, status__in=FINAL_STATES).delete()[0]
    return pruned
