"""App configuration for pqh_site: registers the settings checks of pqh_site/checks.py."""

from django.apps import AppConfig
from django.core.checks import register

from . import checks


class PqhSiteConfig(AppConfig):
    name = "pqh_site"
    verbose_name = "pqh site"

    def ready(self) -> None:
        for check in checks.CHECKS:
            register(check, checks.TAG)
