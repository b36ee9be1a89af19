"""The peer's Django project. As Celery's "First steps with Django": load the Celery app when
Django starts, so that @shared_task uses it."""

from .celery import app as celery_app

__all__ = ("celery_app",)
