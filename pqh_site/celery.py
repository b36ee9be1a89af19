"""The Celery application: one queue per fairness level, drained level 0 first.

This module imports nothing of the apps: tasks are found by autodiscovery once Django is set
up, and tasks_app adds its worker step (the release ticker) from its AppConfig.ready(), which
runs in a worker before the worker builds its steps.
"""

import os

from celery import Celery

from .broker_transport import install as install_broker_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pqh_site.settings")
install_broker_transport()  # a worker survives losing Redis mid-task (see the module)

app = Celery("pqh_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
