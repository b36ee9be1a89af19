"""A frozen copy of the reference model as it was before teams (fairqueue/model.py at df15689),
kept so that tests/unit/test_teams_model.py can show the two-level model orders a deployment
with no teams exactly as the single-level one did. Not used by the service.

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

Not modelled: the window and the admission, and a broker that loses a message it was given
(a released task whose level's list is empty and that is not unconfirmed is dropped, as the
scripts drop it, but the model never makes one). With the default `buffer` (no limit) and no
take(), a picked task simply stays released: the bound tests use the model that way.

Floating point follows the Lua exactly: every tag is computed with the same operations in the
same order (S + cost / weight; tag + (-cost / weight); tag + delta / weight), and costs reach
the scripts as %.17g strings or JSON doubles, which round-trip exactly, as Redis stores scores.
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_left, insort
from dataclasses import dataclass, field


@dataclass
class _Task:
    task_id: str
    seq: int
    user: int
    level: int
    weight: float
    cost: float
    submitted: float


class _ZSet:
    """A sorted set ordered by (score, member), as Redis orders members.

    Members are queue numbers (zero-padded in Redis, so member order is numeric order) or task
    ids (ASCII, compared byte by byte in both).
    """

    def __init__(self) -> None:
        self.score: dict = {}
        self.order: list[tuple] = []

    def __len__(self) -> int:
        return len(self.order)

    def __contains__(self, m) -> bool:
        return m in self.score

    def add(self, m, score: float) -> None:
        if m in self.score:
            self.remove(m)
        self.score[m] = score
        insort(self.order, (score, m))

    def remove(self, m) -> None:
        score = self.score.pop(m)
        del self.order[bisect_left(self.order, (score, m))]

    def head(self) -> tuple | None:
        return self.order[0] if self.order else None

    def rank(self, m) -> int:
        return bisect_left(self.order, (self.score[m], m))


@dataclass
class FairQueueModel:
    """The fair queue's waiting tasks, levels, virtual times and finish tags, in memory."""

    levels: int = 6
    max_wait: float = 1e9
    tasks: dict[int, _Task] = field(default_factory=dict)  # waiting tasks (q:task)
    aged: _ZSet = field(default_factory=_ZSet)  # q:aged, seq -> submit time
    lvl: list[_ZSet] = field(default_factory=list)  # q:lvl:<l>, seq -> start tag
    age: list[_ZSet] = field(default_factory=list)  # q:age:<l>, seq -> submit time
    vt: list[float] = field(default_factory=list)  # q:vt, V_l
    fin: list[dict[int, float]] = field(default_factory=list)  # q:fin:<l>, user -> F_u,l
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

    # --- the steps the scripts share (includes/queue.lua) ---------------------------------

    def _advance(self, level: int, tag: float) -> None:
        if tag > self.vt[level]:
            self.vt[level] = tag
            fin = self.fin[level]
            for user in [u for u, f in fin.items() if f <= tag]:
                del fin[user]

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
    ) -> bool:
        """Add one task (add() in queue.lua); False if the queue holds it already."""
        now = submitted if now is None else now
        if seq in self.tasks or task_id in self.out:
            return False
        task = _Task(task_id, seq, user, level, weight, cost, submitted)
        self.tasks[seq] = task
        if submitted <= now - self.max_wait:
            self.aged.add(seq, submitted)
            return True
        mine = self._user_tasks(user, level)
        f = self.fin[level].get(user)
        if not mine:  # idle time earns no credit
            s = max(self.vt[level], 0.0 if f is None else f)
        elif f is not None:  # a backlogged user continues its chain, even below V
            s = f
        else:  # F was dropped below V: the chain ends where its last waiting task ends
            last_tag, last = mine[-1]
            s = last_tag + self.tasks[last].cost / self.tasks[last].weight
        self.fin[level][user] = s + cost / weight
        self.lvl[level].add(seq, s)
        self.age[level].add(seq, submitted)
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
                self.lvl[level].remove(m)
                self.age[level].remove(m)
                self._advance(level, tag)
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
        del self.tasks[seq]
        if seq in self.aged:
            self.aged.remove(seq)
            return True
        level, zset = task.level, self.lvl[task.level]
        shift = -task.cost / task.weight
        mine = (zset.score[seq], seq)
        for tag, m in self._user_tasks(task.user, level):
            if (tag, m) > mine:
                zset.add(m, tag + shift)
        fin = self.fin[level]
        if task.user in fin:
            fin[task.user] = fin[task.user] + shift
        zset.remove(seq)
        self.age[level].remove(seq)
        return True

    def settle(self, user: int, level: int, weight: float, delta: float) -> None:
        """settle.lua: the user's waiting tasks at the level and its finish tag move by
        delta / weight, delta = seconds - charged (the run's seconds minus the estimate charged,
        one subtraction, as settle.lua computes it); weight is the user's weight now."""
        shift = delta / weight
        zset = self.lvl[level]
        for tag, m in self._user_tasks(user, level):
            zset.add(m, tag + shift)
        fin = self.fin[level]
        if user in fin:
            fin[user] = fin[user] + shift

    def reweight(self, user: int, weight: float) -> None:
        """reweight.lua: the user's waiting tasks are tagged again as if queued at `weight`."""
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
            self.fin[level][user] = tag

    def _position_context(self, cutoff: float) -> dict:
        """position_context(): set sizes, and what the workers take before anything released
        later, in the order they take it (by level queue; in each, the messages the queue did
        not release first, then the released tasks by release number)."""
        self._stuck_level(cutoff)
        released = sorted(self.brk.score, key=lambda t: (self.out[t][0], self.out[t][2], t))
        count, published = [0] * self.levels, [0] * self.levels
        for task_id in released:
            count[self.out[task_id][0]] += 1
            if task_id not in self.rel:
                published[self.out[task_id][0]] += 1
        place, le, total = [], [], 0
        for level in range(self.levels):
            other = max(0, len(self.broker[level]) - published[level])
            place.append(total + other)
            total += other + count[level]
            le.append(total)
        index, stale = {}, 0
        for task_id in released:
            target = self.out[task_id][0]
            index[task_id] = place[target]
            place[target] += 1
            if self.brk.score[task_id] <= cutoff:
                stale = index[task_id] + 1
        return {"le": le, "stale": stale, "index": index}

    def _position(self, c: dict, seq: int) -> int | None:
        """position(): see includes/queue.lua."""
        if seq in self.aged:
            return self.aged.rank(seq) + max(c["le"][0], c["stale"])
        task = self.tasks.get(seq)
        if task is not None:
            level = task.level
            n = len(self.aged) + self.lvl[level].rank(seq) + max(c["le"][level], c["stale"])
            return n + sum(len(self.lvl[lv]) for lv in range(level))
        task_id = next((t for t, m in self.out_seq.items() if m == seq), None)
        if task_id is None:
            return None
        target = self.out[task_id][0]
        n = c["index"][task_id]
        if n >= c["stale"] and target > 0:
            n += len(self.aged) + sum(len(self.lvl[lv]) for lv in range(target))
        return n

    def position(self, seq: int, *, now: float) -> int | None:
        """The tasks that start before a queued task if nothing arrives and nothing ages."""
        return self._position(self._position_context(now - self.max_wait), seq)

    def positions(self, seqs: list[int], *, now: float) -> list[int | None]:
        """positions.lua: age first (16 + 2 x tasks at most), then each task's position."""
        self.age_out(now, 16 + 2 * len(seqs))
        c = self._position_context(now - self.max_wait)
        return [self._position(c, seq) for seq in seqs]

    def start_order(self, *, now: float) -> list[int | str]:
        """Run a copy of the queue forward from now: no arrivals, no time passing (so nothing
        more ages), every pick published at once, and one worker start at a time with a pick
        before each start (as each start triggers one). Return the queue numbers of the tasks
        that were queued (waiting or released), and the other messages of the broker's queues
        (as they are), in the order they start. The check of position(), which must equal each
        task's index in this order."""
        sim = copy.deepcopy(self)
        sim.age_out(now, 10**9)
        order: list[int | str] = []
        started = ""
        seq_of = dict(sim.out_seq)
        while True:
            # Picks are published at once, in release order (their release numbers' order).
            sim.publish(sorted(sim.rel.score, key=lambda t: sim.out[t][2]))
            picked = sim.pick(now=now, max_picks=10**9, started=started)
            for task_id in picked:
                seq_of[task_id] = sim.out_seq[task_id]
            sim.publish(sorted(sim.rel.score, key=lambda t: sim.out[t][2]))
            started = sim.take() or ""
            if not started:
                if sim.tasks:
                    raise AssertionError("tasks wait but nothing is released")
                return order
            order.append(seq_of.get(started, started))

    def waiting(self) -> list[int]:
        """The queue numbers of every waiting task."""
        return sorted(self.tasks)
