"""Settings for the test suite: pqh's settings under a Redis prefix of their own.

The prefix keeps the tests' window counters, fair queue and broker queues apart from a
`make run` on the same Redis, and pytest-django gives them a database of their own.
"""

import os

# Never the prefix of `make run` ("pqh"), even if PQH_REDIS_PREFIX is exported in the shell:
# the tests delete every key under theirs. PQH_TEST_REDIS_PREFIX lets two suites run at once.
os.environ["PQH_REDIS_PREFIX"] = os.environ.get("PQH_TEST_REDIS_PREFIX") or "pqhtest"
os.environ.setdefault("PQH_SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("PQH_TASK_SECONDS", "0.2")
os.environ.setdefault("PQH_MAX_WAIT_SECONDS", "4")
# The suite submits and polls far faster than a person: the door's rates are tested where they
# are set (tests/integration/test_door_rates.py); basic auth is on here so the suite covers it (off by default).
os.environ.setdefault("PQH_SUBMIT_RATE", "off")
os.environ.setdefault("PQH_READ_RATE", "off")
os.environ.setdefault("PQH_ANON_RATE", "off")
os.environ.setdefault("PQH_BASIC_AUTH", "1")

from pqh_site.settings import *  # noqa: E402,F403

# pytest-django's database, never the one `make run` uses; PQH_TEST_DATABASE_NAME lets two
# suites run at once on one server.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("PQH_TEST_DATABASE_NAME") or "test_pqh"}  # noqa: F405

# No collectstatic in tests: serve static files from the apps, as in development.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True

# Tests create many users with passwords: a fast hasher keeps that from dominating the suite
# (only here: the service itself keeps Django's default PBKDF2).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
