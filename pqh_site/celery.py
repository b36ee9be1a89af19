"""The Celery application: one queue per fairness level, drained level 0 first."""

import os

from celery import Celery

from .broker_transport import install as install_broker_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pqh_site.settings")
install_broker_transport()  # a worker survives losing Redis mid-task (see the module)

app = Celery("pqh_site")
app.config_from_object("django.conf:settings", namespace="CELERY")


def level_queue_name(level: int) -> str:
    """Return the Celery queue that serves fairness level `level`."""
    from django.conf import settings

    return settings.PQH_LEVEL_QUEUES[level]


app.autodiscover_tasks()


def _add_worker_steps() -> None:
    from tasks_app.worker_steps import ReleaseTicker

    app.steps["worker"].add(ReleaseTicker)


_add_worker_steps()
