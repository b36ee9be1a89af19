"""pqh: a fair prioritized request handler built on Django, DRF and Celery."""

from .celery import app as celery_app

__all__ = ("celery_app",)
