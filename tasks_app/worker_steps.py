"""A worker bootstep that releases waiting tasks every second, whatever else happens.

Releases are triggered by submissions and by task starts; this tick covers what no event
triggers: picks whose releaser died, and aged tasks while nothing else moves.
"""

import logging

from celery import bootsteps

logger = logging.getLogger(__name__)


class ReleaseTicker(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker) -> None:
        from django.conf import settings

        self.tref = worker.timer.call_repeatedly(settings.PQH_RELEASE_TICK_SECONDS, self.tick)

    def stop(self, worker) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    @staticmethod
    def tick() -> None:
        from .services import task_dispatch_pending

        try:
            task_dispatch_pending()
        except Exception:
            logger.exception("release tick failed")
