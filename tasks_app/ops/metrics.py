"""Prometheus metrics: counters the events count, gauges read from PostgreSQL and Redis on scrape.

Counters and histograms live in each process. With several processes (gunicorn's workers,
Celery's pool) prometheus-client's multiprocess mode adds them up: every process writes its
values to files in PROMETHEUS_MULTIPROC_DIR (no network I/O per event), and a scrape reads them
all. Queue depths and shares are not counted by anyone: they are read when scraped.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from fairqueue.shares import TeamShare, UserShare, share_fairness, team_shares
from pqh_site.core import core
from pqh_site.prometheus import multiprocess_dir

from ..selectors.reports import PeriodTooBusy, user_shares
from ..selectors.tasks import task_counts_by_status_level

REFUSAL_REASONS = ("user_cap", "queue_full", "unavailable", "invalid", "idempotency_conflict")
FINAL_STATUSES = ("SUCCESS", "FAILURE")
# The period over which the per-user share is measured.
SHARE_PERIOD = timedelta(hours=1)
# The `user` label of the series that adds up the users past PQH_METRICS_TOP_USERS. Django's
# user forms refuse parentheses in names; a user given this name otherwise (create_api_user does
# not check) is added up in it too, so no label is ever given twice.
OTHERS = "(others)"

logger = logging.getLogger(__name__)

SUBMISSIONS = Counter(
    "pqh_submissions", "Accepted submissions, by the level they were given.", ["level"]
)
REPLAYS = Counter(
    "pqh_submission_replays", "Repeated submissions answered with the task already accepted."
)
REFUSALS = Counter("pqh_refusals", "Refused submissions, by reason.", ["reason"])
TASK_WAIT = Histogram(
    "pqh_task_wait_seconds",
    "Time from submission to start, by the level the task was given.",
    ["level"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
TASK_RUN = Histogram(
    "pqh_task_run_seconds",
    "Time from start to finish, by how the task ended.",
    ["status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800),
)

# Every series exists from the start, at zero, so rate() and absent() behave from the first scrape.
for _level in range(settings.PQH_LEVELS):
    SUBMISSIONS.labels(level=str(_level))
    TASK_WAIT.labels(level=str(_level))
for _reason in REFUSAL_REASONS:
    REFUSALS.labels(reason=_reason)
for _status in FINAL_STATUSES:
    TASK_RUN.labels(status=_status)


@dataclass(frozen=True)
class ShareSeries:
    """One `user` label of the pqh_user_* gauges: a user, or the users past the top N."""

    user: str
    share: float
    entitled: float
    weight: int


def share_series(rows: list[UserShare], top: int) -> list[ShareSeries]:
    """The series of the `top` users with the largest share received or entitled, and one
    series OTHERS adding up the rest (their shares and weights), if any: at most top + 1."""
    return _top_and_others(
        [ShareSeries(r.username, r.share, r.entitled, r.weight) for r in rows], top
    )


def team_series(rows: list[TeamShare], top: int) -> list[ShareSeries]:
    """The same for teams (a team name has no parentheses, so none is OTHERS)."""
    return _top_and_others(
        [ShareSeries(r.team, r.share, r.entitled, r.team_weight) for r in rows], top
    )


def _top_and_others(series: list[ShareSeries], top: int) -> list[ShareSeries]:
    """The `top` series with the largest share received or entitled, and one OTHERS adding up
    the rest (an OTHERS row among them included), if any."""
    ranked = sorted(series, key=lambda s: (-max(s.share, s.entitled), s.user))
    named = [s for s in ranked if s.user != OTHERS]
    rest = named[top:] + [s for s in ranked if s.user == OTHERS]
    if not rest:
        return named[:top]
    return [
        *named[:top],
        ShareSeries(
            OTHERS,
            sum(s.share for s in rest),
            sum(s.entitled for s in rest),
            sum(s.weight for s in rest),
        ),
    ]


class _ThisProcess:
    """The default registry of this process (single-process mode only)."""

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()


class StateCollector:
    """Gauges read at scrape time: tasks queued, running and in the broker, and user shares."""

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = timezone.now,
        shares: Callable[..., list[UserShare]] | None = None,
    ):
        self.now = now
        self.shares = shares or user_shares

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "pqh_source_up",
            "1 if the source answered during this scrape, 0 if it did not.",
            labels=["source"],
        )
        levels = [str(level) for level in range(settings.PQH_LEVELS)]
        try:
            counts = task_counts_by_status_level()
        except DatabaseError:
            up.add_metric(["postgres"], 0)
        else:
            up.add_metric(["postgres"], 1)
            queued = GaugeMetricFamily(
                "pqh_queued_tasks",
                "Accepted tasks not started yet (in the fair queue or the broker), by level.",
                labels=["level"],
            )
            running = GaugeMetricFamily(
                "pqh_running_tasks", "Tasks running now, by level.", labels=["level"]
            )
            for level in levels:
                queued.add_metric([level], counts.get(("PENDING", int(level)), 0))
                running.add_metric([level], counts.get(("STARTED", int(level)), 0))
            yield queued
            yield running
        try:
            in_broker = core().queue.broker_lengths()
            waiting = core().queue.waiting_count()
        except redis.RedisError:
            up.add_metric(["redis"], 0)
        else:
            up.add_metric(["redis"], 1)
            broker = GaugeMetricFamily(
                "pqh_broker_tasks",
                "Released tasks in the broker's queue of each level, not taken by a worker yet.",
                labels=["level"],
            )
            for level, n in zip(levels, in_broker, strict=False):
                broker.add_metric([level], n)
            yield broker
            yield GaugeMetricFamily(
                "pqh_fair_queue_tasks",
                "Accepted tasks waiting in the fair queue, not released to the broker yet.",
                value=waiting,
            )
        yield from self._shares()
        yield up

    def _shares(self) -> Iterable[Metric]:
        now = self.now()
        try:
            rows = self.shares(since=now - SHARE_PERIOD, now=now)
        except DatabaseError:
            return  # left out; pqh_source_up says whether PostgreSQL answered
        except PeriodTooBusy as exc:
            logger.warning("pqh_user_* gauges left out: %s", exc)
            return
        share = GaugeMetricFamily(
            "pqh_user_share",
            "Share of the worker time of the last hour a user received (0..1).",
            labels=["user"],
        )
        entitled = GaugeMetricFamily(
            "pqh_user_entitled_share",
            "Share of the worker time of the last hour the user was entitled to: its weight's "
            "part while it shared its level with other users, all it received while it had the "
            "level to itself (0..1).",
            labels=["user"],
        )
        weight = GaugeMetricFamily(
            "pqh_user_weight",
            'The weight on the user\'s latest submission (the sum, for user="(others)").',
            labels=["user"],
        )
        for series in share_series(rows, settings.PQH_METRICS_TOP_USERS):
            share.add_metric([series.user], series.share)
            entitled.add_metric([series.user], series.entitled)
            weight.add_metric([series.user], series.weight)
        yield from (share, entitled, weight)
        yield from self._team_gauges(rows)
        yield GaugeMetricFamily(
            "pqh_users_with_tasks",
            "Users with a task waiting or running at some time in the last hour.",
            value=len(rows),
        )
        jain = share_fairness(rows)
        if jain is not None:
            yield GaugeMetricFamily(
                "pqh_share_jain_index",
                "Jain's index over received / due while users shared a level, last hour "
                "(1 = exactly by weight); absent without contention.",
                value=jain,
            )

    @staticmethod
    def _team_gauges(rows: list[UserShare]) -> Iterable[Metric]:
        share = GaugeMetricFamily(
            "pqh_team_share",
            "Share of the worker time of the last hour a team's members received (0..1): the "
            "sum of their pqh_user_share.",
            labels=["team"],
        )
        entitled = GaugeMetricFamily(
            "pqh_team_entitled_share",
            "Share of the worker time of the last hour a team was entitled to: the sum of its "
            "members' entitled shares, within a level divided among teams by team weight, "
            "then among a team's members by weight (0..1).",
            labels=["team"],
        )
        for series in team_series(team_shares(rows), settings.PQH_METRICS_TOP_USERS):
            share.add_metric([series.user], series.share)
            entitled.add_metric([series.user], series.entitled)
        yield from (share, entitled)


def metrics_exposition(
    *, accept: str = "", collector: StateCollector | None = None
) -> tuple[bytes, str]:
    """Return every metric of this host's processes and the scrape-time gauges, and its type.

    The format follows the scraper's Accept header (Prometheus text or OpenMetrics), as
    prometheus-client's own exporters do.
    """
    registry = processes_registry()
    registry.register(collector or StateCollector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def processes_registry() -> CollectorRegistry:
    """The counts of this host's processes: every file of PROMETHEUS_MULTIPROC_DIR, or, in
    single-process mode, this process's own."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    return registry
