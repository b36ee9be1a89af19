"""A plain Python reference model of the fair queue (no Redis, no Django).

It models what the Lua scripts of lua/*.lua do to the waiting tasks, step for step, so that a
test can drive the scripts and the model with the same operations and require the same answers
(tests/integration/test_model_vs_scripts.py), and so that properties of the algorithm (the fairness bound of
docs/fairness.md) can be checked over thousands of workloads without a server.

Modelled, per the design of issue 11 (docs/fairness.md):

- enqueue: a task gets the start tag S = max(V_l, F_u,l) of its level and moves its user's finish
  tag to F_u,l = S + cost / weight; a task submitted at or before now - max_wait goes straight
  to the aged set (it keeps no tag and moves no finish tag); a queue number already waiting is
  refused, and so is a task id released and not yet started (as the scripts refuse both).
- pick: first the aging step (age_out), then up to max_picks tasks: the aged set's oldest
  (submit time, then queue number), else the best non-empty level's smallest (tag, queue
  number). A task leaving a level advances V_l to its tag (if larger) and drops the finish tags
  at or below the new V_l.
- age_out: at most `limit` tasks per call (16 + 2 x picks, or 16 + 2 x tasks, as the scripts
  pass), each time the oldest waiting task across levels submitted at or before now - max_wait,
  moving it to the aged set and advancing V of its level as a pick does.
- cancel: the user's waiting tasks at the level with a larger (tag, queue number) and F_u,l (if
  kept) move by -cost / weight (cost and weight as the task was queued, or as a reweight set
  the weight); an aged task is simply removed.
- settle(user, level, weight, delta): the user's waiting tasks at the level and F_u,l (if kept)
  move by delta / weight (delta = actual - estimate seconds).
- reweight(user, weight): per level, the user's waiting tasks in (tag, queue number) order keep
  the first tag S0 and then S_k = S_{k-1} + cost_{k-1} / weight; F_u,l = S_last + cost_last /
  weight; the weight stored with those tasks changes. Aged tasks are not touched.
- release: a picked task leaves the waiting sets for the "released" ones (q:out, q:brk, q:rel:
  its target level, whether it was aged, its release number, its submit time, its pick time)
  only while fewer than `buffer` released tasks that a worker takes before or with it are
  unconfirmed or in the broker (q:rel, and the broker lists of its target level and better), and
  never while a released task has waited max_wait (a stuck release); publish() puts picks in
  their level's broker list and confirms them, take() is a worker taking the first message of
  the best non-empty list (and reporting its start, which triggers a pick), a pick never
  confirmed is handed out again after recover_after seconds with a new release number, and
  restore() puts a message the queue did not release at the front of a level's list (kombu
  restoring the message of a lost worker).
- position(seq): the tasks that start before it if nothing arrives and nothing ages (see
  position() in includes/queue.lua, and docs/fairness.md, "Queue position"): for a waiting task,
  the waiting tasks picked before it plus the released tasks (and other messages in the
  broker's lists) the workers take first; for a released task, those taken before it plus
  (unless a stuck release is drained
  first) every waiting task of a better target level. start_order() runs the same state
  forward, one pick before each start, as a check on that closed form (tests/unit).

A new task of a user with no task waiting at its level starts at max(V_l, F_u,l); a user with
tasks waiting continues its chain: the new task starts at F_u,l, or, if V_l's advance dropped
F_u,l (a refund took it below V_l), at its last waiting task's tag + cost / weight. So a refund
settled while the user is backlogged is never lost to V_l (start_tag() in queue.lua; the bound
tests need it).

Teams (model_teams.py, lua/includes/teams.lua): a user in no team is a group of its own,
tagged as above; a team is one group at the level (its weight, its finish tag "t:<team>"),
ordering its waiting tasks by member tags among its members; enqueue(team=...) moves a user's
waiting tasks when its team changes (regroup), set_team() and reweight_team() are
set_team.lua and reweight_team.lua. With `hold` (PQH_CHARGE=time) a pick holds each task's group
until settle(task_id=...), keeping a finish tag the level's clock passes meanwhile (q:hold); a
settle with `mean` charges the user's waiting tasks that new mean (follow_mean()).

Not modelled: the window and the admission, and a broker that loses a message it was given
(a released task whose level's list is empty and that is not unconfirmed is dropped, as the
scripts drop it, but the model never makes one). With the default `buffer` (no limit) and no
take(), a picked task simply stays released: the bound tests use the model that way.

Floating point follows the Lua exactly: every tag is computed with the same operations in the
same order (S + cost / weight; tag + (-cost / weight); tag + delta / weight), and costs reach
the scripts as %.17g strings or JSON doubles, which round-trip exactly, as Redis stores scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .model_parts import _Task, _ZSet
from .model_positions import Positions
from .model_teams import TeamSteps


@dataclass
class FairQueueModel(TeamSteps, Positions):
    """The fair queue's waiting tasks, levels, virtual times and finish tags, in memory."""

    levels: int = 6
    max_wait: float = 1e9
    tasks: dict[int, _Task] = field(default_factory=dict)  # waiting tasks (q:task)
    aged: _ZSet = field(default_factory=_ZSet)  # q:aged, seq -> submit time
    lvl: list[_ZSet] = field(default_factory=list)  # q:lvl:<l>, seq -> start tag
    age: list[_ZSet] = field(default_factory=list)  # q:age:<l>, seq -> submit time
    vt: list[float] = field(default_factory=list)  # q:vt, V_l
    fin: list[dict] = field(default_factory=list)  # q:fin:<l>, group -> F_g,l
    # Teams (model_teams.py): user -> team (q:grp), team -> weight (q:teams), and per level
    # the member tags (q:in:<l>), members' finish tags (q:mf:<l>), teams' clocks (q:tv:<l>).
    grp: dict[int, str] = field(default_factory=dict)
    # Charged estimates (PQH_CHARGE=time, `hold`): q:hold, per picked task not yet settled its
    # (level, group), per (level, group) how many, and a finish tag the clock passed meanwhile.
    hold: bool = False
    held_t: dict[str, tuple] = field(default_factory=dict)
    held_n: dict[tuple, int] = field(default_factory=dict)
    held_f: dict[tuple, float] = field(default_factory=dict)
    teams: dict[str, float] = field(default_factory=dict)
    inner: list[dict[int, float]] = field(default_factory=list)
    mf: list[dict[int, float]] = field(default_factory=list)
    tv: list[dict[str, float]] = field(default_factory=list)
    buffer: float = math.inf  # PQH_RELEASE_BUFFER
    recover_after: float = 10.0  # PQH_RELEASE_RECOVER_SECONDS
    # Released, not yet started: task id -> (target level, aged 0/1, release number) (q:out),
    # its queue number, submit time (q:brk) and, until published, pick time (q:rel).
    out: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    out_seq: dict[str, int] = field(default_factory=dict)
    brk: _ZSet = field(default_factory=_ZSet)
    rel: _ZSet = field(default_factory=_ZSet)
    released_count: int = 0  # q:out's field "#"
    broker: list[list[str]] = field(default_factory=list)  # each level's Celery queue, FIFO

    def __post_init__(self) -> None:
        self.lvl = [_ZSet() for _ in range(self.levels)]
        self.age = [_ZSet() for _ in range(self.levels)]
        self.vt = [0.0] * self.levels
        self.fin = [{} for _ in range(self.levels)]
        self.broker = [[] for _ in range(self.levels)]
        self.inner = [{} for _ in range(self.levels)]
        self.mf = [{} for _ in range(self.levels)]
        self.tv = [{} for _ in range(self.levels)]

    # --- the steps the scripts share (includes/queue.lua) ---------------------------------

    def _advance(self, level: int, tag: float) -> None:
        if tag > self.vt[level]:
            self.vt[level] = tag
            fin = self.fin[level]
            for g in [g for g, f in fin.items() if f <= tag]:
                if (level, g) in self.held_n:  # tasks of g not yet settled: keep F aside
                    self.held_f[(level, g)] = fin[g]
                del fin[g]

    def get_fin(self, level: int, g) -> float | None:
        """get_fin(): a group's finish tag, kept (q:fin:<l>) or held (q:hold)."""
        f = self.fin[level].get(g)
        return self.held_f.get((level, g)) if f is None else f

    def set_fin(self, level: int, g, value: float) -> None:
        self.fin[level][g] = value
        self.held_f.pop((level, g), None)

    def _unhold(self, task_id: str) -> None:
        """unhold_task(): a settled task's group holds one task less."""
        if task_id not in self.held_t:
            return
        level, g, _ = self.held_t.pop(task_id)
        self.held_n[(level, g)] -= 1
        if self.held_n[(level, g)] > 0:
            return
        del self.held_n[(level, g)]
        f = self.held_f.pop((level, g), None)
        if f is not None and f > self.vt[level]:
            self.fin[level][g] = f

    def _user_tasks(self, user: int, level: int) -> list[tuple[float, int]]:
        """The user's waiting tasks at a level in (tag, queue number) order."""
        return sorted(
            (self.lvl[level].score[m], m)
            for m, t in self.tasks.items()
            if t.user == user and t.level == level and m in self.lvl[level]
        )

    def enqueue(
        self,
        *,
        task_id: str,
        seq: int,
        user: int,
        level: int,
        weight: float,
        cost: float = 1.0,
        submitted: float,
        now: float | None = None,
        team: str | None = None,
        team_weight: float = 1,
    ) -> bool:
        """Add one task (add() in queue.lua); False if the queue holds it already. With a
        `team`, `weight` is the user's among the team's members and `team_weight` the team's."""
        now = submitted if now is None else now
        if seq in self.tasks or task_id in self.out:
            return False
        if team is None:  # as the queue holds the user now
            team = self.grp.get(user, "")
        elif team != self.grp.get(user, ""):
            self.regroup(user, team, weight, team_weight)
        elif team:
            self.teams[team] = team_weight
        self.tasks[seq] = _Task(task_id, seq, user, level, weight, cost, submitted, team)
        if submitted <= now - self.max_wait:
            self.aged.add(seq, submitted)
            return True
        self.age[level].add(seq, submitted)
        self._place(seq, level)
        return True

    def add(self, tasks: list[dict], *, now: float, max_picks: int = 0) -> list[str]:
        """enqueue.lua: add tasks ({id, seq, user, level, weight, cost, submitted}), then pick."""
        for t in tasks:
            self.enqueue(
                task_id=t["id"],
                seq=t["seq"],
                user=t["user"],
                level=t["level"],
                weight=t["weight"],
                cost=t.get("cost", 1.0),
                submitted=t["submitted"],
                now=now,
                team=t.get("team"),
                team_weight=t.get("tweight", 1),
            )
        return self.pick(now=now, max_picks=max_picks, age_limit=16 + 2 * len(tasks))

    def age_out(self, now: float, limit: int) -> int:
        """Move up to `limit` tasks that have waited max_wait to the aged set, oldest first."""
        cutoff = now - self.max_wait
        moved = 0
        for _ in range(limit):
            best = None
            for level in range(self.levels):
                head = self.age[level].head()
                if head is not None and head[0] <= cutoff and (best is None or head < best[0]):
                    best = (head, level)
            if best is None:
                break
            (submitted, m), level = best
            tag = self.lvl[level].score[m]
            self._team_leave(m, level)
            self.lvl[level].remove(m)
            self.age[level].remove(m)
            self._advance(level, tag)
            self.aged.add(m, submitted)
            moved += 1
        return moved

    def _forget_released(self, task_id: str) -> None:
        """forget_released(): a worker took the task from the broker (or the broker lost it)."""
        if task_id in self.brk:
            self.brk.remove(task_id)
        if task_id in self.rel:
            self.rel.remove(task_id)
        self.out.pop(task_id, None)
        self.out_seq.pop(task_id, None)

    def _stuck_level(self, cutoff: float) -> int:
        """stuck_level(): the target level of the oldest released task if it has waited the
        bound, else -1; released tasks the broker no longer holds are dropped first."""
        for _ in range(16):
            head = self.brk.head()
            if head is None:
                return -1
            submitted, task_id = head
            target = self.out[task_id][0] if task_id in self.out else 0
            if task_id in self.rel or self.broker[target]:
                return target if submitted <= cutoff else -1
            self._forget_released(task_id)
        return -1

    def releases(
        self, *, now: float, max_picks: int, age_limit: int | None = None, started: str = ""
    ) -> list[tuple[str, int, int, str]]:
        """pick.lua: [(task id, target level, aged 0/1, "picked" or "recovered"), ...]."""
        cutoff = now - self.max_wait
        out: list[tuple[str, int, int, str]] = []
        if started:
            self._forget_released(started)
        stale = [m for score, m in self.rel.order if score <= now - self.recover_after][:16]
        for task_id in stale:
            if task_id in self.out:
                target, aged, _ = self.out[task_id]
                self.released_count += 1
                self.out[task_id] = (target, aged, self.released_count)
                self.rel.add(task_id, now)
                out.append((task_id, target, aged, "recovered"))
            else:
                self.rel.remove(task_id)
        self.age_out(now, 16 + 2 * max_picks if age_limit is None else age_limit)
        if self._stuck_level(cutoff) >= 0:
            return out
        inflight = len(self.rel)
        for _ in range(max_picks):
            head = self.aged.head()
            if head is not None:
                submitted, m = head
                level, target, aged = None, 0, 1
            else:
                for level in range(self.levels):
                    head = self.lvl[level].head()
                    if head is not None:
                        break
                else:
                    break
                tag, m = head
                target, aged = level, 0
            ahead = inflight + sum(len(self.broker[b]) for b in range(target + 1))
            if ahead >= self.buffer:
                break
            if aged:
                self.aged.remove(m)
            else:
                submitted = self.age[level].score[m]
                self._team_leave(m, level)
                self.lvl[level].remove(m)
                self.age[level].remove(m)
                self._advance(level, tag)
                if self.hold:
                    t = self.tasks[m]
                    g = f"t:{t.team}" if t.team else t.user
                    self.held_n[(level, g)] = self.held_n.get((level, g), 0) + 1
                    self.held_t[t.task_id] = (level, g, t.cost)
            task = self.tasks.pop(m)
            self.released_count += 1
            self.out[task.task_id] = (target, aged, self.released_count)
            self.out_seq[task.task_id] = m
            self.rel.add(task.task_id, now)
            self.brk.add(task.task_id, submitted)
            inflight += 1
            out.append((task.task_id, target, aged, "picked"))
        return out

    def pick(
        self, *, now: float, max_picks: int, age_limit: int | None = None, started: str = ""
    ) -> list[str]:
        """pick.lua: the ids of the tasks released (handed out again, then picked), in order."""
        releases = self.releases(now=now, max_picks=max_picks, age_limit=age_limit, started=started)
        return [r[0] for r in releases]

    def publish(self, task_ids: list[str]) -> None:
        """Publish released tasks to their level's broker list and confirm them (q:rel)."""
        for task_id in task_ids:
            self.broker[self.out[task_id][0]].append(task_id)
            if task_id in self.rel:
                self.rel.remove(task_id)

    def restore(self, level: int, message: str) -> None:
        """A message the fair queue did not release appears in a level's queue, at the end the
        workers take from (kombu restoring the message of a worker that was lost)."""
        self.broker[level].insert(0, message)

    def take(self) -> str | None:
        """A worker takes the first message of the best non-empty broker list (BRPOP over the
        level queues in order); None if the broker holds nothing. Its start is then reported
        with pick(started=...)."""
        for queue in self.broker:
            if queue:
                return queue.pop(0)
        return None

    def cancel(self, seq: int, task_id: str | None = None) -> bool:
        """cancel.lua: remove a waiting task; its user's later tasks at the level move up."""
        task = self.tasks.get(seq)
        if task is None or (task_id is not None and task.task_id != task_id):
            return False
        if seq in self.aged:
            del self.tasks[seq]
            self.aged.remove(seq)
            return True
        self._unplace(seq, task.level)
        del self.tasks[seq]
        if task.team:
            self._team_fix(task.team, task.level)
        return True

    def settle(
        self,
        user: int,
        level: int,
        weight: float,
        delta: float,
        task_id: str = "",
        *,
        seconds: float | None = None,
        mean: float | None = None,
    ) -> None:
        """settle.lua: the user's waiting tasks at the level and its finish tag move by
        delta / weight, delta = seconds - charged (the run's seconds minus the estimate charged,
        one subtraction, as settle.lua computes it); weight is the user's weight now. In a
        team, the team's tasks move by delta / team weight and the member's by delta / weight.
        Then task `task_id` is no longer held (unhold_task). A held task is charged the cost
        it was picked at: with `seconds`, delta = seconds - that cost. With `mean` (the user's
        new mean, PQH_CHARGE=time), its waiting tasks are then charged it (follow_mean)."""
        held = self.held_t.get(task_id)
        if held is not None and seconds is not None:
            delta = seconds - held[2]
        if user in self.grp:
            self._settle_member(user, self.grp[user], level, weight, delta)
        else:
            shift = delta / weight
            if shift != 0:  # shift_user() changes nothing for 0
                zset = self.lvl[level]
                for tag, m in self._user_tasks(user, level):
                    zset.add(m, tag + shift)
                f = self.get_fin(level, user)
                if f is not None:
                    self.set_fin(level, user, f + shift)
        self._unhold(task_id)
        if mean is not None:
            self._follow_mean(user, mean)

    def reweight(self, user: int, weight: float) -> None:
        """reweight.lua: the user's waiting tasks are tagged again as if queued at `weight`."""
        if user in self.grp:
            self._reweight_member(user, self.grp[user], weight)
            return
        for level in range(self.levels):
            mine = self._user_tasks(user, level)
            if not mine:
                continue
            zset = self.lvl[level]
            tag = mine[0][0]
            for _, m in mine:
                zset.add(m, tag)
                self.tasks[m].weight = weight
                tag = tag + self.tasks[m].cost / weight
            self.set_fin(level, user, tag)

    def waiting(self) -> list[int]:
        """The queue numbers of every waiting task."""
        return sorted(self.tasks)
