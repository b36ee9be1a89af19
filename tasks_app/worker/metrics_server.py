"""A worker host's own /metrics: its processes' starts and finishes, scraped where they happen.

The web server's /metrics adds up the counts of the processes that share its
PROMETHEUS_MULTIPROC_DIR, so a host that runs only workers is never scraped there. With
PQH_WORKER_METRICS_PORT set, each worker's main process serves its host's counts (the task
wait and run histograms its pool processes write, and any other pqh counter of the host) at
http://PQH_WORKER_METRICS_ADDRESS:PORT/metrics. No gauge of the queue or of users is served
here: those are read from PostgreSQL and Redis by the web server's /metrics, and this port has
no login, so it names no user.
"""

import logging

from celery.signals import worker_init, worker_ready
from django.conf import settings
from prometheus_client import start_http_server

from pqh_site.prometheus import warn_if_counts_split

from ..ops.metrics import processes_registry

logger = logging.getLogger(__name__)

_concurrency: list[int] = []


def _remember_concurrency(sender=None, **kwargs) -> None:
    _concurrency[:] = [int(getattr(sender, "concurrency", 0) or 0)]


def _serve(**kwargs) -> None:
    port = settings.PQH_WORKER_METRICS_PORT
    if not port:
        return
    processes = _concurrency[0] if _concurrency else 0
    warn_if_counts_split(processes=processes, who="this worker (its pool)")
    address = settings.PQH_WORKER_METRICS_ADDRESS
    start_http_server(port, addr=address, registry=processes_registry())
    logger.warning("worker metrics at http://%s:%s/metrics", address, port)


def connect_signals() -> None:
    """From the app's ready(): serve once the worker's pool is up (its processes forked)."""
    worker_init.connect(_remember_concurrency, dispatch_uid="pqh-worker-metrics-init", weak=False)
    worker_ready.connect(_serve, dispatch_uid="pqh-worker-metrics", weak=False)
