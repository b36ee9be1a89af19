"""A worker bootstep that releases waiting tasks every second, whatever else happens.

Releases are triggered by submissions and by task starts; this tick covers what no event
triggers: picks whose releaser died, aged tasks while nothing else moves, (about every
PQH_RECOVER_LOST_SECONDS) accepted tasks whose web process died before queueing them, and
(about every PQH_RECONCILE_SECONDS) started tasks whose end was lost with their worker.
"""

import logging
import time

import redis
from celery import bootsteps
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from pqh_site.outages import first_line

from ..services.publishing import task_release_due
from ..services.recovery import task_reconcile, task_recover_lost

logger = logging.getLogger(__name__)


class ReleaseTicker(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        self.last_sweep = time.monotonic()
        self.last_reconcile = time.monotonic()

    def start(self, worker) -> None:
        self.tref = worker.timer.call_repeatedly(settings.PQH_RELEASE_TICK_SECONDS, self.tick)

    def stop(self, worker) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def tick(self) -> None:
        # The tick is this process's request cycle: drop a connection that an outage broke, so
        # the next query reconnects instead of failing for ever.
        close_old_connections()
        now = time.monotonic()
        if now - self.last_sweep >= settings.PQH_RECOVER_LOST_SECONDS:
            self.last_sweep = now
            self._step("recovering lost tasks", task_recover_lost)
        if now - self.last_reconcile >= settings.PQH_RECONCILE_SECONDS:
            self.last_reconcile = now
            self._step("reconciling started tasks", task_reconcile)
        self._step("releasing", task_release_due)

    @staticmethod
    def _step(what: str, step) -> None:
        """Run one step; an outage is one line in the log, anything else a traceback."""
        try:
            step()
        except (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning("release tick: %s failed: %s", what, first_line(exc))
        except Exception:
            logger.exception("release tick: %s failed", what)
