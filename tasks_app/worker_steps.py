"""A worker bootstep that releases waiting tasks every second, whatever else happens.

Releases are triggered by submissions and by task starts; this tick covers what no event
triggers: picks whose releaser died, aged tasks while nothing else moves, and (about every
PQH_RECOVER_LOST_SECONDS) accepted tasks whose web process died before queueing them.
"""

import logging
import time

from celery import bootsteps

logger = logging.getLogger(__name__)


class ReleaseTicker(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        self.last_sweep = time.monotonic()

    def start(self, worker) -> None:
        from django.conf import settings

        self.tref = worker.timer.call_repeatedly(settings.PQH_RELEASE_TICK_SECONDS, self.tick)

    def stop(self, worker) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def tick(self) -> None:
        from django.conf import settings

        from .services import task_dispatch_pending, task_recover_lost

        try:
            if time.monotonic() - self.last_sweep >= settings.PQH_RECOVER_LOST_SECONDS:
                self.last_sweep = time.monotonic()
                task_recover_lost()
            task_dispatch_pending()
        except Exception:
            logger.exception("release tick failed")
