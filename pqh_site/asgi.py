"""ASGI entry point: the wait server (long polls and event streams: tasks_app/waits/).

The Procfile's `waits:` line serves it with granian's ASGI interface beside the web server's
WSGI one. As wsgi.py, it refuses to serve on a setting that cannot work (pqh.E…).
"""

import os

import django
from django.core.asgi import get_asgi_application

from pqh_site.checks import stop_if_misconfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pqh_site.settings")
os.environ.setdefault("PQH_SERVER", "waits")
django.setup(set_prefix=False)
stop_if_misconfigured()  # before the handler and its middleware are built
application = get_asgi_application()
