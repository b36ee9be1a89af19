"""The queue's state as tests set it up and read it (the service itself needs none of this)."""

import time
import uuid
from collections.abc import Iterable

from fairqueue.admission import ADMITTED
from fairqueue.queue import member
from pqh_site.core import core


def record_submission(*, user_id: int, member: str | None = None, now: float | None = None) -> int:
    """Admit one submission of `user_id` (named `member`) as the service does; return how many
    it had made in the window before it. The cap and the global bound are lifted."""
    decision = core().admissions.admit(
        user_id=user_id,
        task_id=member or str(uuid.uuid4()),
        now=time.time() if now is None else now,
        user_cap=10**9,
    )
    assert decision.outcome == ADMITTED, decision
    return decision.count


def active_count(user_id: int) -> int:
    """How many tasks count against the user's cap now."""
    return int(core().redis.zcard(core().keys.active(user_id)))


def queue_unknown(tasks: Iterable[tuple[str, int]]) -> list[str]:
    """The ids of the (task id, queue number) pairs the fair queue holds nowhere."""
    tasks = list(tasks)
    if not tasks:
        return []
    the_core = core()
    pipe = the_core.redis.pipeline(transaction=False)
    for task_id, seq in tasks:
        pipe.hexists(the_core.keys.key("q", "task"), member(seq))
        pipe.hexists(the_core.keys.key("q", "out"), task_id)
    answers = pipe.execute()
    return [
        task_id
        for (task_id, _), waiting, released in zip(tasks, answers[::2], answers[1::2], strict=True)
        if not waiting and not released
    ]
