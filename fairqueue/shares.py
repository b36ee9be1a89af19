"""Who got the service beside what their weight entitles them to: the pure sweep.

The definitions are in docs/fairness.md ("What the dashboard and fairness_report measure") and,
briefly, in tasks_app/selectors/reports.py, which reads the tasks of a period in one query and
hands them here. No I/O: unit-tested with made-up histories (tests/unit/test_shares.py).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from .stats import jain_index


class TaskSpan(NamedTuple):
    """A task's life as the shares read it; `count` identical tasks when grouped."""

    user_id: int
    username: str
    level: int
    weight: int
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    count: int = 1
    team: str = ""  # its team when submitted ("": none, the user shares as a team of its own)
    team_weight: int = 1  # the team's weight when submitted


@dataclass(frozen=True)
class UserShare:
    """One user's service in the period beside what its weight entitles it to.

    service_seconds: its worker time in the period; contended_seconds: the part received while
    it shared its level with other users; due_seconds: what its weight gave it there. share and
    entitled are fractions of everyone's service (entitled counts the time it had its level to
    itself as its due); both sum to 1 over the users.
    """

    user_id: int
    username: str
    weight: int
    service_seconds: float
    share: float
    entitled: float
    contended_seconds: float
    due_seconds: float
    team: str = ""  # the team of its latest task in the period ("": none)
    team_weight: int | None = None  # that team's weight then (None: no team)


@dataclass(frozen=True)
class TeamShare:
    """A team's service in the period beside its entitlement: the sums over its members (the
    users whose latest task in the period was in the team) of theirs."""

    team: str
    team_weight: int
    members: list[str]
    service_seconds: float
    share: float
    entitled: float
    contended_seconds: float
    due_seconds: float


def team_shares(shares: list[UserShare]) -> list[TeamShare]:
    """Add up the members' shares per team, the largest service first (users in no team are
    left out: their own row is their team's)."""
    members: dict[str, list[UserShare]] = defaultdict(list)
    for row in shares:
        if row.team:
            members[row.team].append(row)
    teams = [
        TeamShare(
            team=team,
            team_weight=max(r.team_weight or 1 for r in rows),
            members=sorted(r.username for r in rows),
            service_seconds=sum(r.service_seconds for r in rows),
            share=sum(r.share for r in rows),
            entitled=sum(r.entitled for r in rows),
            contended_seconds=sum(r.contended_seconds for r in rows),
            due_seconds=sum(r.due_seconds for r in rows),
        )
        for team, rows in members.items()
    ]
    return sorted(teams, key=lambda t: (-t.service_seconds, t.team))


def divide_by_weight(slots: float, users: dict[int, tuple[int, int]]) -> dict[int, float]:
    """Divide `slots` among `users` ({user: (weight, tasks)}) by weight, none more than its tasks.

    The water-filling answer: each gets min(tasks, weight · λ), with λ such that the parts add up
    to `slots` (all of them, as long as the tasks are at least the slots).
    """
    weights = sum(weight for weight, _ in users.values())
    if weights <= 0:
        return dict.fromkeys(users, 0.0)
    level = slots / weights
    if all(tasks >= weight * level for weight, tasks in users.values()):
        return {user: weight * level for user, (weight, _) in users.items()}  # nobody capped
    parts: dict[int, float] = {}
    left = float(slots)
    # Whoever has the fewest tasks for its weight is capped first; what it cannot use goes on.
    for user, (weight, tasks) in sorted(users.items(), key=lambda kv: (kv[1][1] / kv[1][0], kv[0])):
        part = min(float(tasks), left * weight / weights)
        parts[user] = part
        left -= part
        weights -= weight
    return parts


def divide_by_team(
    slots: float,
    users: dict[int, tuple[int, int]],
    teams: dict[int, tuple[str, int]] | None = None,
) -> dict[int, float]:
    """Divide `slots` in two steps: among groups by group weight, then within each group among
    its members by their weight ({user: (weight, tasks)}; `teams` {user: (team, team weight)}
    for the users in a team). A user in no team is a group of its own at its weight, so with no
    teams this is divide_by_weight exactly. No group, and no user, gets more than its tasks.
    """
    teams = teams or {}
    if not teams:
        return divide_by_weight(slots, users)
    groups: dict[object, list[int]] = defaultdict(list)
    group_weight: dict[object, int] = {}
    for user, (weight, _) in users.items():
        key = ("team", teams[user][0]) if user in teams else ("user", user)
        groups[key].append(user)
        group_weight[key] = (
            max(teams[user][1], group_weight.get(key, 1)) if user in teams else weight
        )
    keys = list(groups)  # in the order of `users`: deterministic
    index = {key: i for i, key in enumerate(keys)}
    outer = divide_by_weight(
        slots,
        {index[key]: (group_weight[key], sum(users[u][1] for u in groups[key])) for key in keys},
    )
    parts: dict[int, float] = {}
    for key in keys:
        got, members = outer[index[key]], groups[key]
        if len(members) == 1:
            parts[members[0]] = got  # a group of one: all of it, as divide_by_weight gave it
        else:
            parts.update(divide_by_weight(got, {u: users[u] for u in members}))
    return parts


def shares_from(
    tasks: Iterable[TaskSpan], *, since: datetime, now: datetime, max_wait: float
) -> list[UserShare]:
    """Sweep the tasks of the period and return each user's service, contended and due time.

    Pure: user_shares reads the tasks in one query; this is the arithmetic (docs/fairness.md).
    Cuts [since, now) at every instant a task is submitted, starts, ends or ages (`max_wait`
    seconds after submission, if not started by then); a level's division by weight is
    recomputed only when that level changes. A task that starts while its user has its level to
    itself leaves the contest for its whole run: a started task is never interrupted, so a user
    who arrives during that run is owed nothing of it (its run is its user's own time).
    """
    period_end = (now - since).total_seconds()

    def at(moment: datetime) -> float:
        return (moment - since).total_seconds()

    names: dict[int, str] = {}
    team_of: dict[int, tuple[datetime, str, int]] = {}  # user -> its latest task's team
    service: dict[int, float] = defaultdict(float)
    # (instant, 0 for a weight / 1 for a change, user, level, Δ alive, Δ running, the task's
    #  index, (submitted_at, weight, team, team weight) of a weight event): weights go first.
    events: list[tuple[float, int, int, int, int, int, int, tuple | None]] = []
    for index, task in enumerate(tasks):
        born = at(task.submitted_at)
        end = min(at(task.finished_at), period_end) if task.finished_at else period_end
        if born >= period_end or end <= 0:
            continue  # not alive in the period
        user, n = task.user_id, task.count
        names[user] = task.username
        if user not in team_of or task.submitted_at >= team_of[user][0]:
            team_of[user] = (task.submitted_at, task.team, task.team_weight)
        start = at(task.started_at) if task.started_at is not None else None
        if start is not None and max(start, 0.0) < end:
            service[user] += (end - max(start, 0.0)) * n
        aged_at = born + max_wait
        aged = start is None or start > aged_at
        at_level_until = min(end, aged_at) if aged else end
        first = max(born, 0.0)
        recorded = (task.submitted_at, task.weight, task.team, max(task.team_weight or 1, 1))
        events.append((first, 0, user, 0, 0, 0, index, recorded))
        if at_level_until > first:
            events.append((first, 1, user, task.level, n, 0, index, None))
            events.append((at_level_until, 1, user, task.level, -n, 0, index, None))
        if not aged and start is not None and max(start, 0.0) < end:
            events.append((max(start, 0.0), 1, user, task.level, 0, n, index, None))
            events.append((end, 1, user, task.level, 0, -n, index, None))
    # At an instant: weights, then submissions and ends, then starts (a start sees who is there).
    events.sort(key=lambda e: (e[0], e[1], e[5] > 0))

    weight: dict[int, int] = {}
    team: dict[int, str] = {}  # user -> its team, while in one
    team_weight: dict[str, tuple[datetime, int]] = {}  # team -> (since, weight) of its latest task
    weight_from: dict[int, datetime] = {}
    alive: dict[int, dict[int, int]] = defaultdict(dict)  # level -> user -> tasks alive there
    running: dict[int, dict[int, int]] = defaultdict(dict)  # level -> user -> tasks running
    last: dict[int, float] = defaultdict(float)  # level -> instant its figures were taken to
    contended: dict[int, float] = defaultdict(float)
    due: dict[int, float] = defaultdict(float)
    alone: set[int] = set()  # the tasks that started with their level to their user alone

    def settle(level: int, until: float) -> None:
        """Credit `level`'s division, unchanged since last[level], up to `until`."""
        span = until - last[level]
        last[level] = until
        contenders = alive[level]
        if span <= 0 or len(contenders) < 2:
            return
        slots = sum(running[level].values())
        if slots <= 0:
            return
        parts = divide_by_team(
            slots,
            {u: (weight[u], n) for u, n in contenders.items()},
            {u: (team[u], team_weight[team[u]][1]) for u in contenders if u in team}
            if team
            else None,
        )
        for u, part in parts.items():
            due[u] += part * span
            contended[u] += running[level].get(u, 0) * span

    def move(table: dict[int, int], user: int, delta: int) -> None:
        table[user] = table.get(user, 0) + delta
        if table[user] <= 0:
            del table[user]

    for instant, kind, user, level, d_alive, d_running, index, recorded in events:
        if kind == 0:
            submitted, new_weight, new_team, new_team_weight = recorded
            if user in weight_from and submitted <= weight_from[user]:
                continue  # an older submission than the one whose weight holds
            changed = (
                {user}
                if (weight.get(user), team.get(user, "")) != (new_weight, new_team)
                else set()
            )
            held = team_weight.get(new_team)
            newer_team_weight = bool(new_team) and (held is None or submitted >= held[0])
            if newer_team_weight and held is not None and held[1] != new_team_weight:
                changed |= {u for u, name in team.items() if name == new_team}
            if changed:
                for lvl in [lvl for lvl, users in alive.items() if changed & users.keys()]:
                    settle(lvl, instant)
            weight[user] = new_weight
            if new_team:
                team[user] = new_team
            else:
                team.pop(user, None)
            if newer_team_weight:
                team_weight[new_team] = (submitted, new_team_weight)
            weight_from[user] = submitted
            continue
        if index in alone:
            continue  # the end of a run that left the contest when it started
        settle(level, instant)
        if d_running > 0 and not any(other != user for other in alive[level]):
            alone.add(index)  # its run is its user's own: out of the level's contest
            move(alive[level], user, -d_running)
            continue
        if d_alive:
            move(alive[level], user, d_alive)
        if d_running:
            move(running[level], user, d_running)
    for level in list(alive):
        settle(level, period_end)

    total = sum(service.values())
    shares = []
    for user, username in names.items():
        got = service[user]
        # What it received with its level to itself is its due; in contention, its part.
        entitled = max(got - contended[user], 0.0) + due[user]
        shares.append(
            UserShare(
                user_id=user,
                username=username,
                weight=weight.get(user, 1),
                service_seconds=got,
                share=got / total if total > 0 else 0.0,
                entitled=entitled / total if total > 0 else 0.0,
                contended_seconds=contended[user],
                due_seconds=due[user],
                team=team_of[user][1],
                team_weight=team_of[user][2] if team_of[user][1] else None,
            )
        )
    return sorted(shares, key=lambda s: (-s.service_seconds, s.username))


def share_fairness(shares: list[UserShare]) -> float | None:
    """Jain's index over received ÷ due while contending (1.0 = exactly by weight).

    Only over the users that were due something: None when no level was shared while served.
    """
    return jain_index([s.contended_seconds / s.due_seconds for s in shares if s.due_seconds > 0])
