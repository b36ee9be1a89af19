"""App configuration for tasks_app."""

from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tasks_app"
    verbose_name = "Tasks"

    def ready(self) -> None:
        from .authentication import connect_signals

        connect_signals()
