"""App configuration for tasks_app."""

from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tasks_app"
    verbose_name = "Tasks"

    def ready(self) -> None:
        # Models and the services that use them load only once the registry is ready.
        from .authentication import connect_signals
        from .signals import connect_weight_signals

        connect_signals()
        connect_weight_signals()
