"""Teams in the reference model (fairqueue/model.py): lua/includes/teams.lua in plain Python.

A user in no team is a group of its own (its key in the finish tags: the user id). A team is one
group at the level's step ("t:<team>", weight: the team's) and orders its waiting tasks by a
second start tag among its members (inner), on its own clock (tv) with the members' finish tags
(mf). The team's level tags follow that member order, each cost / team weight after the one
before; team_fix() respaces them when a step leaves the two orders different. Every step does
the same floating-point operations, in the same order, as the Lua.
"""

from __future__ import annotations


def group(user: int, team: str):
    """The group's key in the finish tags (q:fin:<l>): the user, or "t:<team>"."""
    return f"t:{team}" if team else user


class TeamSteps:
    """The team steps of FairQueueModel (a mixin: it reads and writes the model's sets)."""

    def _team_weight(self, team: str) -> float:
        return self.teams.get(team, 1)

    def _team_tasks(self, team: str, level: int) -> list[tuple[float, int]]:
        """The team's waiting tasks at a level in (level tag, queue number) order."""
        zset = self.lvl[level]
        return sorted(
            (zset.score[m], m)
            for m, t in self.tasks.items()
            if t.team == team and t.level == level and m in zset and m in self.inner[level]
        )

    def _member_tasks(self, user: int, level: int) -> list[tuple[float, int]]:
        """A team member's waiting tasks at a level in (member tag, queue number) order."""
        inner = self.inner[level]
        return sorted(
            (inner[m], m)
            for m, t in self.tasks.items()
            if t.user == user and t.level == level and m in inner and m in self.lvl[level]
        )

    def _team_fix(self, team: str, level: int, weight: float | None = None) -> int:
        """team_fix(): respace the team's level tags along its member order (always with a new
        `weight`, else only if the orders differ); return how many were tagged again."""
        tasks = self._team_tasks(team, level)
        if not tasks:
            return 0
        inner = self.inner[level]
        order = sorted(tasks, key=lambda t: (inner[t[1]], t[1]))
        if weight is None:
            if [m for _, m in tasks] == [m for _, m in order]:
                return 0
            weight = self._team_weight(team)
        s = tasks[0][0]
        for _, m in order:
            self.lvl[level].add(m, s)
            s = s + self.tasks[m].cost / weight
        self.set_fin(level, group(0, team), s)
        return len(order)

    def _member_start(self, team: str, user: int, level: int) -> float:
        f = self.mf[level].get(user)
        mine = self._member_tasks(user, level)
        if not mine:
            return max(self.tv[level].get(team, 0.0), 0.0 if f is None else f)
        if f is not None:
            return f
        last_tag, last = mine[-1]
        return last_tag + self.tasks[last].cost / self.tasks[last].weight

    def _place(self, seq: int, level: int) -> None:
        """place(): give waiting task `seq` its level tag (and member tag, in a team)."""
        task = self.tasks[seq]
        user, team, cost = task.user, task.team, task.cost
        if not team:
            mine = self._user_tasks(user, level)
            f = self.get_fin(level, user)
            if not mine:  # idle time earns no credit
                s = max(self.vt[level], 0.0 if f is None else f)
            elif f is not None:  # a backlogged user continues its chain, even below V
                s = f
            else:  # F was dropped below V: the chain ends where its last waiting task ends
                last_tag, last = mine[-1]
                s = last_tag + self.tasks[last].cost / self.tasks[last].weight
            self.set_fin(level, user, s + cost / task.weight)
            self.lvl[level].add(seq, s)
            return
        w = self._team_weight(team)
        inner = self._member_start(team, user, level)
        self.mf[level][user] = inner + cost / task.weight
        tasks = self._team_tasks(team, level)
        scores = self.inner[level]
        j = sum(1 for _, m in tasks if (scores[m], m) < (inner, seq))
        g = group(user, team)
        f = self.get_fin(level, g)
        if j == len(tasks):
            if not tasks:
                s = max(self.vt[level], 0.0 if f is None else f)
            elif f is not None:
                s = f
            else:
                last_tag, last = tasks[-1]
                s = last_tag + self.tasks[last].cost / w
            self.set_fin(level, g, s + cost / w)
        else:
            s = tasks[j][0]
            shift = cost / w
            for tag, m in tasks[j:]:
                self.lvl[level].add(m, tag + shift)
            if f is not None:
                self.set_fin(level, g, f + shift)
        self.lvl[level].add(seq, s)
        scores[seq] = inner
        self._team_fix(team, level)

    def _shift_team(self, team: str, level: int, shift: float, after=None) -> None:
        for tag, m in self._team_tasks(team, level):
            if after is None or (tag, m) > after:
                self.lvl[level].add(m, tag + shift)
        g = group(0, team)
        f = self.get_fin(level, g)
        if f is not None:
            self.set_fin(level, g, f + shift)

    def _shift_member(self, user: int, level: int, shift: float, after=None) -> None:
        inner = self.inner[level]
        for tag, m in self._member_tasks(user, level):
            if after is None or (tag, m) > after:
                inner[m] = tag + shift
        if user in self.mf[level]:
            self.mf[level][user] = self.mf[level][user] + shift

    def _unplace(self, seq: int, level: int) -> None:
        """unplace(): take a waiting task out of its level as a cancel does (its group's later
        tasks, and in a team its member's later ones, move up by its cost)."""
        task = self.tasks[seq]
        zset = self.lvl[level]
        if seq in zset:
            after = (zset.score[seq], seq)
            shift = -task.cost / task.weight
            if not task.team and shift != 0:  # shift_user() changes nothing for 0
                for tag, m in self._user_tasks(task.user, level):
                    if (tag, m) > after:
                        zset.add(m, tag + shift)
                f = self.get_fin(level, task.user)
                if f is not None:
                    self.set_fin(level, task.user, f + shift)
            elif task.team:
                self._shift_team(task.team, level, -task.cost / self._team_weight(task.team), after)
                if seq in self.inner[level]:
                    mine = (self.inner[level][seq], seq)
                    self._shift_member(task.user, level, -task.cost / task.weight, mine)
            zset.remove(seq)
        if seq in self.age[level]:
            self.age[level].remove(seq)
        self.inner[level].pop(seq, None)

    def _team_leave(self, seq: int, level: int) -> None:
        """team_leave(): a team task left its level: the team's clock follows its member tag."""
        task = self.tasks[seq]
        if task.team and seq in self.inner[level]:
            inner = self.inner[level].pop(seq)
            if inner > self.tv[level].get(task.team, 0.0):
                self.tv[level][task.team] = inner

    def regroup(self, user: int, team: str, weight: float, team_weight: float) -> int:
        """set_team.lua (and enqueue, for a task whose team is not its user's): the user's
        waiting tasks leave their group as cancelled ones would and join `team` in order."""
        old = self.grp.get(user, "")
        if team:
            self.teams[team] = team_weight
            self.grp[user] = team
        else:
            self.grp.pop(user, None)
        if old == team:
            return 0
        moved = 0
        for level in range(self.levels):
            mine = self._user_tasks(user, level) if not old else self._member_tasks(user, level)
            for _, m in reversed(mine):
                self._unplace(m, level)
            self.mf[level].pop(user, None)
            if old and mine:
                self._team_fix(old, level)
            for _, m in mine:
                task = self.tasks[m]
                task.weight, task.team = weight, team
                self.age[level].add(m, task.submitted)
                self._place(m, level)
                moved += 1
        return moved

    def set_team(self, user: int, team: str, weight: float, team_weight: float = 1) -> int:
        """set_team.lua: put the user in `team` ("" for none)."""
        return self.regroup(user, team, weight, team_weight)

    def reweight_team(self, team: str, weight: float) -> int:
        """reweight_team.lua: the team's waiting tasks are tagged again at its new weight."""
        self.teams[team] = weight
        return sum(self._team_fix(team, level, weight) for level in range(self.levels))

    def _reweight_member(self, user: int, team: str, weight: float) -> None:
        for level in range(self.levels):
            s = None
            for tag, m in self._member_tasks(user, level):
                s = tag if s is None else s
                self.inner[level][m] = s
                self.tasks[m].weight = weight
                s = s + self.tasks[m].cost / weight
            if s is not None:
                self.mf[level][user] = s
                self._team_fix(team, level)

    def _settle_member(self, user: int, team: str, level: int, weight: float, delta: float):
        self._shift_team(team, level, delta / self._team_weight(team))
        self._shift_member(user, level, delta / weight)
        self._team_fix(team, level)

    def _follow_mean(self, user: int, cost: float) -> None:
        """follow_mean(): the user's waiting tasks are charged `cost` (its new mean), respaced
        from each chain's first tag; in a team, its member tags, then the team's level tags."""
        team = self.grp.get(user)
        for level in range(self.levels):
            mine = self._member_tasks(user, level) if team else self._user_tasks(user, level)
            s = None
            for tag, m in mine:
                s = tag if s is None else s
                if team:
                    self.inner[level][m] = s
                else:
                    self.lvl[level].add(m, s)
                self.tasks[m].cost = cost
                s = s + cost / self.tasks[m].weight
            if s is not None and team:
                self.mf[level][user] = s
                self._team_fix(team, level, self._team_weight(team))
            elif s is not None:
                self.set_fin(level, user, s)
