"""WSGI entry point: Django's application behind the door's gate (pqh_site/door.py).

The web server imports it, and it refuses to serve on a setting that cannot work (a pqh.E…
system check), with one line and a non-zero exit.
"""

import os

import django
from django.core.wsgi import get_wsgi_application

from pqh_site.checks import stop_if_misconfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pqh_site.settings")
django.setup(set_prefix=False)
stop_if_misconfigured()  # before the handler and its middleware are built

from pqh_site.door import DoorGate  # noqa: E402  (after Django is set up)
from pqh_site.prometheus import warn_if_counts_split  # noqa: E402

warn_if_counts_split(processes=int(os.environ.get("PQH_WEB_WORKERS") or 2), who="the web server")
application = DoorGate(get_wsgi_application())
