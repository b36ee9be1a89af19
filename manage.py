#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pqh_site.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from pqh_site.checks import stop_if_misconfigured

    try:
        if sys.argv[1:2] != ["check"]:
            # Settings that cannot work together stop every command as one line each (pqh.E…);
            # `manage.py check` lists them in full, with warnings, as Django does.
            django.setup()
            stop_if_misconfigured(warn=False)
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A wrong or missing setting is the operator's to fix: one line, not a traceback.
        sys.exit(f"ImproperlyConfigured: {exc}")


if __name__ == "__main__":
    main()
