"""Fairness figures over a period: who got the service beside what their weight entitles them to.

Definitions (in full in docs/fairness.md, "What the dashboard and fairness_report measure"):

- A task is *alive* at its level from submission until it ends (or now), *running* from its start
  until it ends; a task not started PQH_MAX_WAIT_SECONDS after submission is served oldest first
  (aging) and from then on belongs to no level.
- The period is cut into pieces at every instant a task is submitted, starts, ends or ages. In a
  piece, a level's *contenders* are the users with a task alive there; with two or more, the
  worker time the level receives is divided by weight (no user more than its tasks can use: one
  slot a task), and each contender is *due* its part. A user's weight at an instant is the one
  recorded on its latest submission up to then.
- With teams the division is two-step: among groups (teams, and each user in no team) by team
  weight, then a team's part among its contending members by their weight. A task records its
  user's team and the team's weight at submission; a team's weight at an instant is the one
  recorded on its members' latest submission up to then.
- A team's service, contended, due, share and entitled are the sums of its members' (a user
  counts in the team recorded on its latest task in the period).
- A user's *service* is its worker time in the period; *contended* is what it received in
  contended pieces and *due* what it was due there. *share* = service ÷ everyone's; *entitled* =
  (service − contended + due) ÷ everyone's: what it got with its level to itself is its due.
- Jain's index is over contended ÷ due of the users with something due; None without contention.
- A task's *wait* is started_at − submitted_at; wait percentiles are over the tasks that started
  in the period, by the level they were given at submission.

The shares are one query returning the tasks of the period (bounded: REPORT_MAX_TASKS) and a pure
sweep over them (shares_from); every other figure is one aggregate SQL query, never a query per
user or per row.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import states
from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import (
    Aggregate,
    CharField,
    Count,
    DateTimeField,
    DurationField,
    F,
    Func,
    IntegerField,
    Max,
    Min,
    Q,
    Value,
)
from django.db.models.functions import Coalesce

from fairqueue.shares import TaskSpan, TeamShare, UserShare, shares_from, team_shares
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


# The most tasks the shares are computed over; past it user_shares refuses (PeriodTooBusy).
REPORT_MAX_TASKS = 200_000


class PeriodTooBusy(Exception):
    """More tasks were alive in the period than the shares are computed over."""

    def __init__(self, since: datetime, now: datetime, limit: int):
        self.since, self.now, self.limit = since, now, limit
        super().__init__(
            f"more than {limit} tasks were alive from {since:%Y-%m-%d %H:%M:%S} to "
            f"{now:%H:%M:%S} UTC"
        )


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


def _check_period(since: datetime, now: datetime) -> None:
    if since >= now:
        raise ValueError(f"the period must end after it starts, got {since} .. {now}")


class _First(Func):
    """`(expression)[1]`: the first element of a PostgreSQL array."""

    template = "(%(expressions)s)[1]"


def _period_tasks(*, since: datetime, now: datetime, max_wait: float) -> list[TaskSpan]:
    """The tasks alive in [since, now), in one query of at most REPORT_MAX_TASKS + 1 rows.

    One row per task, except the tasks that waited the whole period past the aging bound: they
    count for nothing but their user, so they come as one row per user (their number, and the
    weight of the latest), which keeps a deep backlog from filling the rows.
    """
    aged_by = since - timedelta(seconds=max_wait)
    alive = (
        TaskRecord.objects.filter(submitted_at__lt=now)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gt=since))
        .order_by()
    )
    nothing_but_waiting = (
        Q(submitted_at__lte=aged_by)
        & (Q(started_at__isnull=True) | Q(started_at__gte=now))
        & (Q(finished_at__isnull=True) | Q(finished_at__gte=now))
    )
    columns = ("user_id", "user__username", "lvl", "w", "sub", "start", "end", "n", "tm", "tw")
    each = alive.filter(
        Q(submitted_at__gt=aged_by) | Q(started_at__lt=now) | Q(finished_at__lt=now)
    ).annotate(
        lvl=F("level"),
        w=F("weight"),
        sub=F("submitted_at"),
        start=F("started_at"),
        end=F("finished_at"),
        n=Value(1),
        tm=F("team"),
        tw=Coalesce("team_weight", 1),
    )
    grouped = (
        alive.filter(nothing_but_waiting)
        .values("user_id", "user__username")
        .annotate(
            lvl=Min("level"),
            w=_First(ArrayAgg("weight", order_by="-submitted_at"), output_field=IntegerField()),
            sub=Max("submitted_at"),
            start=Value(None, output_field=DateTimeField()),
            end=Value(None, output_field=DateTimeField()),
            n=Count("pk"),
            tm=_First(ArrayAgg("team", order_by="-submitted_at"), output_field=CharField()),
            tw=_First(
                ArrayAgg(Coalesce("team_weight", 1), order_by="-submitted_at"),
                output_field=IntegerField(),
            ),
        )
    )
    rows = list(
        each.values_list(*columns).union(grouped.values_list(*columns), all=True)[
            : REPORT_MAX_TASKS + 1
        ]
    )
    if len(rows) > REPORT_MAX_TASKS:
        raise PeriodTooBusy(since, now, REPORT_MAX_TASKS)
    return [TaskSpan(*row) for row in rows]


def user_shares(*, since: datetime, now: datetime) -> list[UserShare]:
    """Return every user with a task alive in [since, now): service, share and entitlement.

    The one function behind the dashboard, fairness_report and the pqh_user_* gauges: one query
    (_period_tasks) and the pure sweep (shares_from). Raises PeriodTooBusy past
    REPORT_MAX_TASKS tasks.
    """
    _check_period(since, now)
    max_wait = float(settings.PQH_MAX_WAIT_SECONDS)
    tasks = _period_tasks(since=since, now=now, max_wait=max_wait)
    return shares_from(tasks, since=since, now=now, max_wait=max_wait)


def teams_of(shares: list[UserShare]) -> list[TeamShare]:
    """The teams' shares: each the sum of its members' (a user counts in the team recorded on
    its latest task in the period; users in no team are their own rows)."""
    return team_shares(shares)


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
