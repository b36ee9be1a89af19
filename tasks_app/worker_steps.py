"""A worker bootstep that releases waiting tasks every second, whatever else happens.

Releases are triggered by submissions and by task starts; this tick covers what no event
triggers: picks whose releaser died, aged tasks while nothing else moves, and (every
RECOVER_EVERY ticks) accepted tasks whose web process died before queueing them.
"""

import logging

from celery import bootsteps

logger = logging.getLogger(__name__)


class ReleaseTicker(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    RECOVER_EVERY = 30

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        self.ticks = 0

    def start(self, worker) -> None:
        from django.conf import settings

        self.tref = worker.timer.call_repeatedly(settings.PQH_RELEASE_TICK_SECONDS, self.tick)

    def stop(self, worker) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def tick(self) -> None:
        from .services import task_dispatch_pending, task_recover_lost

        self.ticks += 1
        try:
            if self.ticks % self.RECOVER_EVERY == 0:
                task_recover_lost()
            task_dispatch_pending()
        except Exception:
            logger.exception("release tick failed")
