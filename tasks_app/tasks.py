"""The Celery task: load the task by id, claim it, release the next one, run the work."""

from typing import Any

from celery import shared_task, states
from celery.exceptions import Ignore
from celery.signals import task_postrun
from django.conf import settings

from . import events, selectors, services
from .progress import PROGRESS, ProgressReporter


@shared_task(bind=True, name="pqh.run", acks_late=True, ignore_result=False)
def run_task(self, task_id: str) -> Any:
    """Run one accepted submission through PQH_TASK_CALLABLE."""
    delivery = self.request.delivery_info or {}
    record = services.task_claim(
        task_id=task_id,
        worker=self.request.hostname or "",
        redelivered=bool(delivery.get("redelivered")),
    )
    # This task just left the broker, so there is room for the next one.
    services.task_dispatch_pending(started=task_id)
    if record is None:
        # Cancelled, or a duplicate of a delivery that already ran: store nothing.
        raise Ignore()
    events.event_started(record)
    progress = ProgressReporter(
        lambda meta: self.update_state(state=PROGRESS, meta=meta),
        interval=settings.PQH_PROGRESS_INTERVAL,
    )
    return services.task_execute(record, progress=progress)


@task_postrun.connect(sender=run_task)
def _record_end(
    sender=None, task_id: str | None = None, state: str | None = None, **kwargs
) -> None:
    """Mark the history row once Celery has stored the result, so a poll never sees a gap."""
    if state in (states.SUCCESS, states.FAILURE):
        services.task_finish(task_id=task_id, status=state)
        record = selectors.task_get(task_id=task_id)
        if record is not None and record.status == state:
            events.event_finished(record)
