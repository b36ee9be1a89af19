"""Fairness figures over a period: who got the service beside what their weight entitles them to.

Definitions (also in docs/fairness.md, "What the dashboard measures"):

- A task *contends* in the period [since, now) if its life, from submission to its end (or now
  while it is queued or running), overlaps the period. A user contends if any of their tasks does.
- A user's *service* is the worker time their tasks received inside the period: the sum over their
  tasks of the overlap of [started_at, finished_at or now] with [since, now).
- *share* = the user's service ÷ the service of all contending users (0 when nobody ran).
- *entitled* = the user's weight ÷ the sum of the weights of all contending users: what start-time
  fair queuing would give them if everyone contended at one level all period long. Levels move
  service towards light users on purpose, so a hog's share sits below its entitlement.
- A task's *wait* is started_at − submitted_at; wait percentiles are over the tasks that started
  in the period, by the level they were given at submission.

Every figure is one aggregate SQL query over the period (the indexes of migration 0004), never a
query per user or per row.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import states
from django.conf import settings
from django.db.models import (
    Aggregate,
    Case,
    Count,
    DateTimeField,
    DurationField,
    F,
    Func,
    Max,
    Min,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least

from fairqueue.stats import jain_index  # the project's one Jain; reports.jain_index still works
from users_app.selectors import UserWindow, user_windows

from ..models import TaskRecord


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, *, fraction: float, **extra):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


class DateBin(Func):
    """PostgreSQL's date_bin(stride, source, origin): the start of the stride `source` falls in."""

    function = "DATE_BIN"
    output_field = DateTimeField()


@dataclass(frozen=True)
class UserShare:
    """One contending user's service in the period beside what their weight entitles them to."""

    user_id: int
    username: str
    weight: int
    service_seconds: float
    share: float
    entitled: float


@dataclass(frozen=True)
class LevelWaits:
    """Waits of the tasks of one level that started in the period, in seconds."""

    level: int
    started: int
    p50: float | None
    p95: float | None
    longest: float | None


@dataclass(frozen=True)
class LevelLoad:
    """Tasks of one level queued and running now, and how long the oldest queued one waits."""

    level: int
    queued: int
    running: int
    oldest_wait: float | None


@dataclass(frozen=True)
class Activity:
    """Submissions and starts per time bucket: bucket i starts at since + i * step."""

    since: datetime
    step: timedelta
    submitted: list[int]
    started: list[int]


def shares_from(rows: list[tuple[int, str, int, float]]) -> list[UserShare]:
    """Turn (user id, name, weight, service seconds) of the contending users into shares.

    Pure: the SQL aggregate is done by user_shares; this is the arithmetic, tested on its own.
    """
    total_service = sum(max(service, 0.0) for *_, service in rows)
    total_weight = sum(weight for _, _, weight, _ in rows)
    shares = [
        UserShare(
            user_id=user_id,
            username=username,
            weight=weight,
            service_seconds=max(service, 0.0),
            share=max(service, 0.0) / total_service if total_service > 0 else 0.0,
            entitled=weight / total_weight if total_weight > 0 else 0.0,
        )
        for user_id, username, weight, service in rows
    ]
    return sorted(shares, key=lambda s: (-s.service_seconds, s.username))


def share_fairness(shares: list[UserShare]) -> float | None:
    """Jain's index over share ÷ entitled of the contending users (1.0 = exactly by weight)."""
    return jain_index([s.share / s.entitled for s in shares if s.entitled > 0])


def _check_period(since: datetime, now: datetime) -> None:
    if since >= now:
        raise ValueError(f"the period must end after it starts, got {since} .. {now}")


def user_shares(*, since: datetime, now: datetime) -> list[UserShare]:
    """Return every user who contended in [since, now), with service, share and entitlement.

    One query, grouped by user; weights are the users' current weights (Profile).
    """
    _check_period(since, now)
    at_since = Value(since, output_field=DateTimeField())
    at_now = Value(now, output_field=DateTimeField())
    run_end = Least(Coalesce(F("finished_at"), at_now), at_now)
    run_start = Greatest(F("started_at"), at_since)
    service = Case(
        When(
            started_at__isnull=False,
            started_at__lt=now,
            then=Greatest(run_end - run_start, Value(timedelta(0))),
        ),
        default=Value(timedelta(0)),
        output_field=DurationField(),
    )
    rows = (
        TaskRecord.objects.filter(submitted_at__lt=now)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gt=since))
        .order_by()
        .values("user_id", "user__username", "user__profile__weight")
        .annotate(service=Sum(service))
    )
    return shares_from(
        [
            (
                row["user_id"],
                row["user__username"],
                row["user__profile__weight"] or 1,
                row["service"].total_seconds() if row["service"] else 0.0,
            )
            for row in rows
        ]
    )


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def wait_percentiles(*, since: datetime, now: datetime) -> list[LevelWaits]:
    """Return, for every level, p50, p95 and the longest wait of the tasks started in the period."""
    _check_period(since, now)
    wait = F("started_at") - F("submitted_at")
    rows = {
        row["level"]: row
        for row in TaskRecord.objects.filter(started_at__gte=since, started_at__lt=now)
        .order_by()
        .values("level")
        .annotate(
            started=Count("pk"),
            p50=PercentileCont(wait, fraction=0.5, output_field=DurationField()),
            p95=PercentileCont(wait, fraction=0.95, output_field=DurationField()),
            longest=Max(wait),
        )
    }
    return [
        LevelWaits(
            level=level,
            started=rows[level]["started"] if level in rows else 0,
            p50=_seconds(rows[level]["p50"]) if level in rows else None,
            p95=_seconds(rows[level]["p95"]) if level in rows else None,
            longest=_seconds(rows[level]["longest"]) if level in rows else None,
        )
        for level in range(max(settings.PQH_LEVELS, max(rows, default=-1) + 1))
    ]


def level_load(*, now: datetime) -> list[LevelLoad]:
    """Return, for every level, the tasks queued and running now, and the oldest queued wait."""
    rows = (
        TaskRecord.objects.filter(status__in=[states.PENDING, states.STARTED])
        .order_by()
        .values("level", "status")
        .annotate(n=Count("pk"), oldest=Min("submitted_at"))
    )
    queued: dict[int, int] = {}
    running: dict[int, int] = {}
    oldest: dict[int, datetime] = {}
    for row in rows:
        if row["status"] == states.PENDING:
            queued[row["level"]] = row["n"]
            oldest[row["level"]] = row["oldest"]
        else:
            running[row["level"]] = row["n"]
    levels = max(settings.PQH_LEVELS, max([*queued, *running], default=-1) + 1)
    return [
        LevelLoad(
            level=level,
            queued=queued.get(level, 0),
            running=running.get(level, 0),
            oldest_wait=(now - oldest[level]).total_seconds() if level in oldest else None,
        )
        for level in range(levels)
    ]


def activity(*, since: datetime, now: datetime, step: timedelta) -> Activity:
    """Return submissions and starts per `step` from `since` to `now` (two grouped queries)."""
    _check_period(since, now)
    if step <= timedelta(0):
        raise ValueError(f"step must be positive, got {step}")
    buckets = -(-(now - since) // step)  # ceiling division
    origin = Value(since, output_field=DateTimeField())
    stride = Value(step, output_field=DurationField())

    def counts(field: str) -> list[int]:
        rows = (
            TaskRecord.objects.filter(**{f"{field}__gte": since, f"{field}__lt": now})
            .order_by()
            .annotate(bucket=DateBin(stride, F(field), origin))
            .values("bucket")
            .annotate(n=Count("pk"))
            .values_list("bucket", "n")
        )
        out = [0] * buckets
        for bucket, n in rows:
            index = (bucket - since) // step
            if 0 <= index < buckets:
                out[index] += n
        return out

    return Activity(
        since=since, step=step, submitted=counts("submitted_at"), started=counts("started_at")
    )


def largest_windows(*, now: float | None = None, limit: int = 10) -> list[UserWindow]:
    """Return the `limit` users with the largest live window, largest first: by count, or by
    seconds charged under PQH_CHARGE=time."""
    return user_windows(now=now, limit=limit)
