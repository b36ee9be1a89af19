"""The records of the reference model (fairqueue/model.py): a waiting task, a sorted set."""

from bisect import bisect_left, insort
from dataclasses import dataclass


@dataclass
class _Task:
    task_id: str
    seq: int
    user: int
    level: int
    weight: float
    cost: float
    submitted: float
    team: str = ""  # "": a user in no team, a group of its own


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
