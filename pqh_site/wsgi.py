"""WSGI entry point: Django's application behind the door's gate (pqh_site/door.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pqh_site.settings")
django_application = get_wsgi_application()

from pqh_site.door import DoorGate  # noqa: E402  (after Django is set up)

application = DoorGate(django_application)
