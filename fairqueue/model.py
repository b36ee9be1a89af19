"""A plain Python reference model of the fair queue (no Redis, no Django).

It models what the Lua scripts of lua/*.lua do to the waiting tasks, step for step, so that a
test can drive the scripts and the model with the same operations and require the same answers
(tests/integration/test_model_vs_scripts.py), and so that properties of the algorithm (the fairness bound of
docs/fairness.md) can be checked over thousands of workloads without a server.

Modelled, per the design of issue 11 (docs/fairness.md):

- enqueue: a task gets the start tag S = max(V_l, F_u,l) of its level and moves its user's finish
  tag to F_u,l = S + cost / weight; a task submitted at or before now - max_wait goes straight
  to the aged set (it keeps no tag and moves no finish tag); a queue number already waiting is
  refused (a picked task counts as started at once, so it may be queued again, as the scripts
  allow once a worker has taken it).
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
- position(seq): aged tasks ahead (rank in the aged set), or all aged tasks + every task of a
  better level + the rank in its level.

A new task of a user with no task waiting at its level starts at max(V_l, F_u,l); a user with
tasks waiting continues its chain: the new task starts at F_u,l, or, if V_l's advance dropped
F_u,l (a refund took it below V_l), at its last waiting task's tag + cost / weight. So a refund
settled while the user is backlogged is never lost to V_l (start_tag() in queue.lua; the bound
tests need it).

Not modelled: the release buffer, the broker's lists, stuck releases and unconfirmed picks
(the differential test runs with a huge buffer, confirms every pick and reports each picked task
as started at once, so none of them plays a part), nor the window and the admission.

Floating point follows the Lua exactly: every tag is computed with the same operations in the
same order (S + cost / weight; tag + (-cost / weight); tag + delta / weight), and costs reach
the scripts as %.17g strings or JSON doubles, which round-trip exactly, as Redis stores scores.
"""

from __future__ import annotations

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
    """A sorted set of queue numbers ordered by (score, queue number), as Redis orders members.

    Members are zero-padded queue numbers in Redis, so member order is numeric order.
    """

    def __init__(self) -> None:
        self.score: dict[int, float] = {}
        self.order: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return len(self.order)

    def __contains__(self, m: int) -> bool:
        return m in self.score

    def add(self, m: int, score: float) -> None:
        if m in self.score:
            self.remove(m)
        self.score[m] = score
        insort(self.order, (score, m))

    def remove(self, m: int) -> None:
        score = self.score.pop(m)
        del self.order[bisect_left(self.order, (score, m))]

    def head(self) -> tuple[float, int] | None:
        return self.order[0] if self.order else None

    def rank(self, m: int) -> int:
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

    def __post_init__(self) -> None:
        self.lvl = [_ZSet() for _ in range(self.levels)]
        self.age = [_ZSet() for _ in range(self.levels)]
        self.vt = [0.0] * self.levels
        self.fin = [{} for _ in range(self.levels)]

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
        if seq in self.tasks:
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

    def pick(self, *, now: float, max_picks: int, age_limit: int | None = None) -> list[str]:
        """pick.lua (no buffer, no broker): the ids of the tasks released, in release order."""
        self.age_out(now, 16 + 2 * max_picks if age_limit is None else age_limit)
        out = []
        for _ in range(max_picks):
            head = self.aged.head()
            if head is not None:
                m = head[1]
                self.aged.remove(m)
            else:
                for level in range(self.levels):
                    head = self.lvl[level].head()
                    if head is not None:
                        break
                else:
                    break
                tag, m = head
                self.lvl[level].remove(m)
                self.age[level].remove(m)
                self._advance(level, tag)
            task = self.tasks.pop(m)
            out.append(task.task_id)
        return out

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

    def position(self, seq: int) -> int | None:
        """The tasks released before a waiting task if nothing arrives and nothing ages."""
        if seq in self.aged:
            return self.aged.rank(seq)
        task = self.tasks.get(seq)
        if task is None:
            return None
        n = len(self.aged) + self.lvl[task.level].rank(seq)
        return n + sum(len(self.lvl[level]) for level in range(task.level))

    def positions(self, seqs: list[int], *, now: float) -> list[int | None]:
        """positions.lua: age first (16 + 2 x tasks at most), then each task's position."""
        self.age_out(now, 16 + 2 * len(seqs))
        return [self.position(seq) for seq in seqs]

    def waiting(self) -> list[int]:
        """The queue numbers of every waiting task."""
        return sorted(self.tasks)
