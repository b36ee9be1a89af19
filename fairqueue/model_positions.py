"""Queue positions in the reference model (fairqueue/model.py): position_context() and
position() of includes/queue.lua, and start_order(), the check of their closed form."""

from __future__ import annotations

import copy


class Positions:
    """The position steps of FairQueueModel (a mixin: it reads the model's sets)."""

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
