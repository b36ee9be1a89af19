"""ASGI entry point: the wait server (long polls and event streams: tasks_app/waits/).

The Procfile's `waits:` line serves it with granian's ASGI interface beside the web server's
WSGI one. As wsgi.py, it refuses to serve on a setting that cannot work (pqh.E…).

No thread per wait. Django's ASGIHandler runs each request in an asgiref ThreadSensitiveContext:
the request's first sync step (the request_started receivers, a MiddlewareMixin hook) gets a
thread of its own, kept until the request ends, which for a wait is up to
PQH_WAIT_MAX_SECONDS and for a stream minutes: thousands of waits would be thousands of idle
threads. WaitServerHandler runs requests outside such a context, so those short sync steps
share asgiref's one thread-sensitive thread (what Django did before asgiref 3.3), and the
views' reads of PostgreSQL run in the loop's bounded pool (tasks_app/waits/views.py:
thread_sensitive=False). The thread count stays flat however many wait (tests/system).
"""

import os

import django
from django.core.handlers.asgi import ASGIHandler

from pqh_site.checks import stop_if_misconfigured


class WaitServerHandler(ASGIHandler):
    """Django's ASGI handler, without a ThreadSensitiveContext (a thread) per request."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pqh_site.settings")
os.environ.setdefault("PQH_SERVER", "waits")
django.setup(set_prefix=False)
stop_if_misconfigured()  # before the handler and its middleware are built
application = WaitServerHandler()
