"""Reads about users: their weight, cap and rates, and their window as the policy reads it.

A user's window row (UserWindow) is built here and only here: `/api/usage/`, the weights admin,
`queue_stats`, the dashboard and `fairness_report` all show rows from user_windows().
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model

from fairqueue.policy import charge_unit, level0_at, level_of, usage_per_weight
from fairqueue.window import WindowUsage
from pqh_site.core import core

from .models import Profile, Team

# Ids in one `pk__in` read: PostgreSQL binds at most 65,535 parameters in a statement.
IN_SLICE = 10_000

DEFAULT_WEIGHT = Profile._meta.get_field("weight").default


def _profile(user) -> Profile | None:
    try:
        return user.profile
    except Profile.DoesNotExist:
        return None


def user_weight(user) -> int:
    """Return the user's weight (1 if it has no weight row). Reads the row loaded with the user."""
    profile = _profile(user)
    return DEFAULT_WEIGHT if profile is None else profile.weight


def user_team_row(user) -> Team | None:
    """Return the user's team row, or None for none. Reads the row loaded with the weight row."""
    profile = _profile(user)
    return None if profile is None else profile.team


def user_team(user) -> tuple[str, int]:
    """Return the user's team as the fair queue names it and its weight: ("", 1) for none.
    Reads the rows loaded with the user (the team is loaded with the weight row)."""
    profile = _profile(user)
    team = None if profile is None else profile.team
    return ("", 1) if team is None else (team.queue_key, team.weight)


def user_cap(user) -> int:
    """Return how many tasks the user may have queued or running: its own cap, or the default."""
    profile = _profile(user)
    return (profile.max_active if profile is not None else None) or settings.PQH_USER_MAX_ACTIVE


@dataclass(frozen=True)
class UserWindow:
    """A user's window as the policy reads it, and when it would let them back to level 0."""

    user_id: int
    username: str
    count: int
    usage: float  # the count under PQH_CHARGE=tasks, seconds charged under time
    unit: str  # "tasks" or "seconds"
    weight: int
    usage_per_weight: float
    next_level: int
    bounds: list[float]
    level0_at: datetime | None  # None: already at level 0
    window_seconds: int
    charge: str = "tasks"
    cap: int = 0  # how many tasks it may have queued or running: its own cap or the default
    active: int = 0  # its tasks queued or running now, as the cap counts them
    team: str | None = None  # its team's name (None: a team of its own, at its weight)
    team_weight: int | None = None  # its team's weight


def window_row(user, window: WindowUsage, *, now: float) -> UserWindow:
    """The row of `user` for a window the core read. No I/O."""
    config = core().config
    charge = config.charge
    weight = user_weight(user)
    profile = _profile(user)
    team = None if profile is None else profile.team  # loaded with the weight row
    usage = float(window.usage) if charge == "time" else int(window.count)
    at = None
    if config.fairness:
        at = level0_at(
            entries=window.entries,
            weight=weight,
            bounds=config.bounds(),
            window_seconds=config.window_seconds,
            charge=charge,
            now=now,
        )
    return UserWindow(
        user_id=user.pk,
        username=user.get_username(),
        count=window.count,
        usage=usage,
        unit=charge_unit(charge),
        weight=weight,
        usage_per_weight=usage_per_weight(usage=usage, weight=weight, charge=charge),
        next_level=level_of(config, count_before=window.count, weight=weight, usage=window.usage),
        bounds=config.bounds(),
        level0_at=None if at is None else datetime.fromtimestamp(at, tz=UTC),
        window_seconds=settings.PQH_WINDOW_SECONDS,
        charge=charge,
        cap=user_cap(user),
        active=window.active,
        team=None if team is None else team.name,
        team_weight=None if team is None else team.weight,
    )


def user_window(user, *, now: float | None = None) -> UserWindow:
    """Return the user's window row: count (and seconds under time), weight, the level their
    next task would get, when they fall back to level 0 if they stop submitting now, their cap
    and how many tasks they have queued or running.

    One Redis round trip (the cap is read from the row loaded with the user).
    """
    now = time.time() if now is None else now
    return window_row(user, core().windows.usage(user_id=user.pk, now=now), now=now)


def user_windows(
    user_ids: Iterable[int] | None = None, *, now: float | None = None, limit: int | None = None
) -> list[UserWindow]:
    """Return the window rows of these users (default: every user with a live window), the
    largest usage first, at most `limit`; users whose window is empty are left out.

    For operators' pages: a round trip per user, and a SCAN without `user_ids`.
    """
    now = time.time() if now is None else now
    windows = core().windows
    if user_ids is None:
        user_ids = windows.active_users(now=now)
    read = {user_id: windows.usage(user_id=user_id, now=now) for user_id in user_ids}
    read = {user_id: window for user_id, window in read.items() if window.count}
    ids = list(read)
    # In slices (IN_SLICE): the server binds the ids when PQH_DB_PREPARE is on.
    users = [
        user
        for start in range(0, len(ids), IN_SLICE)
        for user in get_user_model()
        .objects.filter(pk__in=ids[start : start + IN_SLICE])
        .select_related("profile__team")
    ]
    rows = [window_row(user, read[user.pk], now=now) for user in users]
    rows.sort(key=lambda row: (-row.usage, row.username))
    return rows if limit is None else rows[:limit]


@dataclass(frozen=True)
class TeamRow:
    """A team as `manage.py team list` and the admin show it."""

    name: str
    weight: int
    members: list[str]


def team_rows() -> list[TeamRow]:
    """Every team, by name, with its members' names (two queries)."""
    teams = Team.objects.prefetch_related("members__user").order_by("name")
    return [
        TeamRow(
            name=team.name,
            weight=team.weight,
            members=sorted(p.user.get_username() for p in team.members.all()),
        )
        for team in teams
    ]
