"""Settings for the test suite: pqh's settings under a Redis prefix of their own.

The prefix keeps the tests' window counters, fair queue and broker queues apart from a
`make run` on the same Redis, and pytest-django gives them a database of their own.
"""

import os

os.environ.setdefault("PQH_REDIS_PREFIX", "pqhtest")
os.environ.setdefault("PQH_SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("PQH_TASK_SECONDS", "0.2")
os.environ.setdefault("PQH_MAX_WAIT_SECONDS", "4")

from pqh_site.settings import *  # noqa: E402,F403

# No collectstatic in tests: serve static files from the apps, as in development.
WHITENOISE_AUTOREFRESH = True
