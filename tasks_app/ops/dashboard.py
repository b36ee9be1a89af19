"""The fairness dashboard in the admin: load per level now, shares, waits, and activity as SVG."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone

from fairqueue.shares import TeamShare, UserShare, share_fairness, team_shares

from ..admin import duration_text
from ..selectors import reports

PERIOD = timedelta(hours=1)
STEP = timedelta(minutes=1)
TOP_WINDOWS = 10
TOP_TEAMS = 10  # the teams with the largest share received or entitled


@dataclass(frozen=True)
class Series:
    name: str
    css_class: str
    points: str  # SVG polyline points, "x,y x,y …"
    total: int


@dataclass(frozen=True)
class Tick:
    label: str
    position: float


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    bottom: int
    series: list[Series]
    y_ticks: list[Tick]
    x_ticks: list[Tick]


def line_chart(
    series: list[tuple[str, str, list[int]]],
    *,
    since: datetime,
    step: timedelta,
    width: int = 720,
    height: int = 220,
    x_tick_every: int = 10,
) -> LineChart:
    """Lay out counts per bucket as SVG polylines: pure geometry, drawn by the template.

    `series` is (name, css class, counts); every list has one count per bucket from `since`.
    """
    left, right, top, bottom = 40, 24, 10, height - 24
    buckets = max((len(counts) for _, _, counts in series), default=0)
    peak = max((max(counts, default=0) for _, _, counts in series), default=0)
    y_max = max(peak, 1)
    span = width - left - right

    def x(i: int) -> float:
        return left + (span * i / (buckets - 1) if buckets > 1 else 0)

    def y(value: float) -> float:
        return bottom - (bottom - top) * value / y_max

    drawn = [
        Series(
            name=name,
            css_class=css_class,
            points=" ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(counts)),
            total=sum(counts),
        )
        for name, css_class, counts in series
    ]
    y_values = sorted({0, y_max // 2, y_max}) if y_max > 1 else [0, 1]
    y_ticks = [Tick(label=str(v), position=round(y(v), 1)) for v in y_values]
    x_ticks = [
        Tick(label=timezone.localtime(since + step * i).strftime("%H:%M"), position=round(x(i), 1))
        for i in range(0, buckets, x_tick_every)
    ]
    return LineChart(
        width=width,
        height=height,
        left=left,
        bottom=bottom,
        series=drawn,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
    )


def _ratio(share: UserShare | TeamShare | None) -> str:
    """Received ÷ due while the user shared its level, as "1.02×"; "not shared" if it never
    shared a level while that level was served."""
    if share is None:
        return ""
    if share.due_seconds <= 0:
        return "not shared"
    return f"{share.contended_seconds / share.due_seconds:.2f}×"


def fairness_dashboard(request, *, context: dict):
    """Render the dashboard: every figure from tasks_app.selectors.reports, a bounded number of queries."""
    if not request.user.has_perm("tasks_app.view_taskrecord"):
        raise PermissionDenied
    now = timezone.now()
    since = now - PERIOD
    try:
        shares = reports.user_shares(since=since, now=now)
        too_busy = None
    except reports.PeriodTooBusy as exc:
        shares, too_busy = [], str(exc)
    by_user = {share.user_id: share for share in shares}
    windows = [
        {"user": row, "share": by_user.get(row.user_id), "ratio": _ratio(by_user.get(row.user_id))}
        for row in reports.largest_windows(now=now.timestamp(), limit=TOP_WINDOWS)
    ]
    teams = sorted(team_shares(shares), key=lambda t: (-max(t.share, t.entitled), t.team))
    load = reports.level_load(now=now)
    waits = reports.wait_percentiles(since=since, now=now)
    # The chart's buckets start on whole minutes, so its ticks read as clock times.
    chart_since = since.replace(second=0, microsecond=0)
    activity = reports.activity(since=chart_since, now=now, step=STEP)
    chart = line_chart(
        [
            ("submissions", "submitted", activity.submitted),
            ("starts", "started", activity.started),
        ],
        since=chart_since,
        step=STEP,
    )
    peak_queued = max((row.queued for row in load), default=0)
    return TemplateResponse(
        request,
        "admin/pqh/fairness.html",
        {
            **context,
            "title": "Fairness dashboard",
            "now": now,
            "period_minutes": int(PERIOD.total_seconds() // 60),
            "load": [
                {
                    "row": row,
                    "oldest": duration_text(row.oldest_wait),
                    "bar": round(100 * row.queued / peak_queued) if peak_queued else 0,
                }
                for row in load
            ],
            "total_queued": sum(row.queued for row in load),
            "total_running": sum(row.running for row in load),
            "windows": windows,
            "teams": [{"team": t, "ratio": _ratio(t)} for t in teams[:TOP_TEAMS]],
            "more_teams": max(len(teams) - TOP_TEAMS, 0),
            "contending": len(shares),
            "service": duration_text(sum(s.service_seconds for s in shares)),
            "contended": duration_text(sum(s.contended_seconds for s in shares)),
            "jain": share_fairness(shares),
            "too_busy": too_busy,
            "waits": [
                {
                    "row": row,
                    "p50": duration_text(row.p50),
                    "p95": duration_text(row.p95),
                    "longest": duration_text(row.longest),
                }
                for row in waits
            ],
            "chart": chart,
        },
    )
