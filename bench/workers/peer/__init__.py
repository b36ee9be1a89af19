"""The worker of the service a Django team writes without pqh (bench.workers compares it).

Celery's "First steps with Django" as written: this package is the Django project (settings,
the Celery app in celery.py, one task in tasks.py), django-celery-results storing every result
in PostgreSQL (`CELERY_RESULT_BACKEND = "django-db"`), Celery's defaults otherwise. Run as
`celery -A bench.workers.peer worker`.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
