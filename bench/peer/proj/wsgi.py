"""WSGI entry point of the peer (granian serves `bench.peer.proj.wsgi:application`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peer.proj.settings")

application = get_wsgi_application()
