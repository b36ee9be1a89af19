"""App configuration for tasks_app."""

from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tasks_app"
    verbose_name = "Tasks"

    def ready(self) -> None:
        # Models and the services that use them load only once the registry is ready.
        from pqh_site.celery import app as celery_app

        from .signals import connect_weight_signals
        from .worker import metrics_server, shutdown
        from .worker.steps import ReleaseTicker

        connect_weight_signals()
        shutdown.connect_signals()
        metrics_server.connect_signals()
        # A worker runs django.setup() (so this) before it builds its steps from app.steps.
        celery_app.steps["worker"].add(ReleaseTicker)
