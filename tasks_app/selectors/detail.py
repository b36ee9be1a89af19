"""One task as its owner sees it, built in one pass: the serializer only shapes it.

A task's place in the fair queue is read once (one Redis round trip, while it is queued) and
gives its position, its start estimate and whether aging lifted it; its progress (while
running) and its result (once ended) are one query each.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import states

from fairqueue.queue import Place

from ..models import TaskRecord
from ..worker.progress import PROGRESS
from .places import task_place, task_start_estimate
from .tasks import task_progress, task_result_value
from .why import task_priority


@dataclass(frozen=True)
class TaskView:
    """Everything the detail shows of a task, read once."""

    record: TaskRecord
    place: Place | None
    estimated_start_at: datetime | None
    priority: dict[str, Any]
    progress: dict[str, Any] | None
    result: Any

    @property
    def status(self) -> str:
        """Celery's state as the API shows it: PROGRESS while a running task has reported."""
        return PROGRESS if self.progress is not None else self.record.status

    @property
    def position(self) -> int | None:
        return None if self.place is None else self.place.position


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def task_view(record: TaskRecord, *, estimate: bool = True) -> TaskView:
    """Read what the detail of `record` shows. Without `estimate` (the answer to a submission,
    on the hot path) the start estimate's two queries are skipped: a poll of the task has it."""
    place = task_place(record)
    start = None
    if estimate and place is not None and record.status == states.PENDING:
        start = task_start_estimate(record, position=place.position)
    return TaskView(
        record=record,
        place=place,
        estimated_start_at=start,
        priority=task_priority(record, place=place, estimated_start_at=_iso(start)),
        progress=task_progress(record),
        result=task_result_value(record),
    )
