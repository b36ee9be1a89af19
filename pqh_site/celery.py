"""The Celery application: one queue per fairness level, drained level 0 first.

This module imports nothing of the apps: tasks are found by autodiscovery once Django is set
up, and tasks_app adds its worker step (the release ticker) from its AppConfig.ready(), which
runs in a worker before the worker builds its steps.
"""

import os

import django
from celery import Celery, signals
from django.apps import apps

from .broker_transport import install as install_broker_transport
from .checks import stop_if_misconfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pqh_site.settings")
install_broker_transport()  # a worker survives losing Redis mid-task (see the module)

app = Celery("pqh_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def refuse_to_start_on_a_bad_setting(**kwargs) -> None:
    """Stop a worker or beat at start on a setting that cannot work (a pqh.E… check): one line
    and exit 1. Celery's Django fixup runs the system checks but ignores what they find."""
    if not apps.ready:
        # Only if the fixup has not (it has, by now): django.setup() configures logging again,
        # over what Celery set up for the worker or beat.
        django.setup()
    stop_if_misconfigured()
