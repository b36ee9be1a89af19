"""App configuration for users_app."""

from django.apps import AppConfig


class UsersAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "users_app"
    verbose_name = "Users and weights"

    def ready(self) -> None:
        from . import lockout, signals  # noqa: F401  (signals: a weight row for every new user)
        from .authentication import connect_signals

        connect_signals()
        lockout.connect_signals()
