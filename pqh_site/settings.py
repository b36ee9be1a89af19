"""Django settings for pqh, read from the environment through small typed helpers (env.py)."""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from fairqueue.rates import parse_rate as _parse_rate
from pqh_site.client_address import parse_networks as _parse_networks
from pqh_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_float_list,
    env_int,
    env_int_list,
    env_str,
    read_env_file,
)
from pqh_site.log_format import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

# The local .env (written by `make run`) fills in what the environment does not set, so
# `manage.py` run by hand sees the secret key and the demo admin's password.
read_env_file(BASE_DIR / ".env")

# A value that cannot be read fails here, naming its variable (pqh_site/env.py); settings that
# cannot work together are system checks (pqh_site/checks.py, ids pqh.E001…, listed in README).

DEBUG = env_bool("PQH_DEBUG", False)
SECRET_KEY = os.environ.get("PQH_SECRET_KEY", "")
# Here rather than in a system check: no process, whether it runs the checks or not (a script,
# Flower), may fall back to the public development key unless debug asks for it.
if not SECRET_KEY:
    if not DEBUG and not env_bool("PQH_ALLOW_INSECURE_KEY", False):
        raise ImproperlyConfigured(
            "PQH_SECRET_KEY is not set; set it (or PQH_DEBUG=1 for local development)"
        )
    # Development only: a fixed key is acceptable when debug is explicitly on. Its prefix makes
    # `check --deploy` flag it (security.W009) wherever it is used.
    SECRET_KEY = "django-insecure-pqh-development-key-do-not-use-in-production"

ALLOWED_HOSTS = [
    h.strip() for h in env_str("PQH_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("PQH_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

# --- Production: HTTPS. Defaults keep `make run` working on plain http://127.0.0.1; the README
# lists the values for a deployment behind TLS, which `manage.py check --deploy` passes.
SECURE_SSL_REDIRECT = env_bool("PQH_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("PQH_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PQH_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("PQH_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("PQH_SECURE_COOKIES", False)
# Only behind a proxy that sets X-Forwarded-Proto itself (and drops the client's): otherwise a
# client could claim HTTPS. Behind such a proxy, the redirect needs it (check pqh.W002).
if env_bool("PQH_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "pqh_site.admin_site.PqhAdminConfig",  # django.contrib.admin with the fairness dashboard
    "pqh_site.apps.PqhSiteConfig",  # the settings checks (pqh.E001…)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "axes",
    "users_app",
    "tasks_app",
]

MIDDLEWARE = [
    "pqh_site.errors.JSONErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "pqh_site.request_limits.RequestLimitsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "pqh_site.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a login refused into a lockout into its 429 (users_app.lockout.lockout_response).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "pqh_site.urls"

# Which server this process is: "web" (the WSGI server: every route) or "waits" (the ASGI server
# of long polls and event streams, pqh_site/asgi.py: README, "Waiting for a result"). The wait
# server has routes of its own and only middleware that runs without a thread: a sync one
# would hold a thread for the whole of every wait (whitenoise, CSRF and messages are not
# needed there: it serves no static file, no form, no page).
PQH_SERVER = env_choice("PQH_SERVER", "web", ("web", "waits"))
if PQH_SERVER == "waits":
    ROOT_URLCONF = "pqh_site.urls_waits"
    MIDDLEWARE = [
        "pqh_site.errors.JSONErrorMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "pqh_site.request_limits.RequestLimitsMiddleware",
        "pqh_site.middleware.DatabaseUnavailableMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "axes.middleware.AxesMiddleware",
    ]
CSRF_FAILURE_VIEW = "pqh_site.errors.csrf_failure"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "pqh_site.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pqh"),
        conn_max_age=env_int("PQH_DB_CONN_MAX_AGE", 600, minimum=0),
        conn_health_checks=True,
    )
}
# An unreachable PostgreSQL host fails a connection attempt after this long instead of hanging
# (libpq's default is to wait for ever), so workers and web requests can retry or answer 503.
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
    "PQH_DB_CONNECT_TIMEOUT", 5, minimum=1
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Files WhiteNoise serves at the site's root: /favicon.ico, which browsers ask for on every page.
WHITENOISE_ROOT = BASE_DIR / "pqh_site" / "public"

# HTTP basic on the API hashes a password to check it: off unless asked for (README, "Who may
# come in"). Tokens and sessions cover the API and the browser.
PQH_BASIC_AUTH = env_bool("PQH_BASIC_AUTH", False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "users_app.authentication.ProfileTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        *(["users_app.authentication.RememberedBasicAuthentication"] if PQH_BASIC_AUTH else []),
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Request rates at the door (users_app/throttling.py), checked right after authentication.
    "DEFAULT_THROTTLE_CLASSES": [
        "users_app.throttling.SubmitRateThrottle",
        "users_app.throttling.ReadRateThrottle",
        "users_app.throttling.AddressRateThrottle",
    ],
    # DRF's own client address reads X-Forwarded-For from anyone unless told how many proxies
    # there are; pqh's throttles use pqh_site.client_address instead, and this keeps DRF's off.
    "NUM_PROXIES": 0,
    "DEFAULT_PAGINATION_CLASS": "tasks_app.api.pagination.StrictPageNumberPagination",
    "PAGE_SIZE": env_int("PQH_PAGE_SIZE", 20, minimum=1),
    "UNAUTHENTICATED_USER": None,
    # JSON within bounds; forms for the browsable API's HTML form (`x` is then JSON text).
    "DEFAULT_PARSER_CLASSES": [
        "tasks_app.api.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's, plus the `code` and Retry-After of pqh_site.errors.RefusedError (429, 503).
    "EXCEPTION_HANDLER": "pqh_site.errors.api_exception_handler",
}

# The OpenAPI schema at /api/schema/ and its Swagger UI at /api/docs/, served from local static
# files (drf-spectacular-sidecar): no CDN, so the docs work on a machine without internet.
SPECTACULAR_SETTINGS = {
    "TITLE": "pqh API",
    "DESCRIPTION": (
        "The fair prioritized request handler: submit work, get a task id at once, poll for "
        "the result. Every call but the schema and the docs needs authentication: a token "
        "(`Authorization: Token <key>`), a session, or HTTP basic. Every error is JSON: "
        '`{"detail": "..."}`, or for a field `{"<field>": ["..."]}`.'
    ),
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {"TaskStatusEnum": "tasks_app.api.serializers.API_STATUS_CHOICES"},
}

# --- pqh: the fairness policy -------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# REDIS_URL names a node of a Redis Cluster (every pqh key shares one hash tag, so one slot).
PQH_REDIS_CLUSTER = env_bool("PQH_REDIS_CLUSTER", False)
# Every key pqh writes starts with this, so user names can never collide with the broker's keys
# and tests can run beside `make run` under their own prefix.
PQH_REDIS_PREFIX = env_str("PQH_REDIS_PREFIX", "pqh")
PQH_WINDOW_SECONDS = env_int("PQH_WINDOW_SECONDS", 6000, minimum=1)
# Strictly increasing positive counts (check pqh.E002).
PQH_LEVEL_BOUNDS = env_int_list("PQH_LEVEL_BOUNDS", [1, 6, 16, 26, 36])
PQH_FAIRNESS = env_bool("PQH_FAIRNESS", True)
PQH_MAX_WAIT_SECONDS = env_float("PQH_MAX_WAIT_SECONDS", 600.0, minimum=0.0)
# How many released, not yet started tasks may sit in the broker at or above one level.
PQH_RELEASE_BUFFER = env_int("PQH_RELEASE_BUFFER", 1, minimum=1)
# A release whose publish was not confirmed within this many seconds is published again.
PQH_RELEASE_RECOVER_SECONDS = env_float("PQH_RELEASE_RECOVER_SECONDS", 10.0, minimum=0.1)
PQH_RELEASE_TICK_SECONDS = env_float("PQH_RELEASE_TICK_SECONDS", 1.0, minimum=0.05)
# A task recorded but not queued for this long (its web process died in between) is queued
# again by a worker's sweep, which runs about this often.
PQH_RECOVER_LOST_SECONDS = env_float("PQH_RECOVER_LOST_SECONDS", 30.0, minimum=1.0)
# Every this many seconds one worker checks every queued row against the fair queue (a slow
# safety pass); in between, the sweep above looks only at rows submitted since its last run.
PQH_FULL_SWEEP_SECONDS = env_float("PQH_FULL_SWEEP_SECONDS", 600.0, minimum=1.0)
# Admission limits: tasks queued or running per user (a profile may override it), and tasks
# queued in all (waiting in the fair queue or released and not started).
PQH_USER_MAX_ACTIVE = env_int("PQH_USER_MAX_ACTIVE", 100, minimum=1)
PQH_MAX_QUEUED = env_int("PQH_MAX_QUEUED", 100_000, minimum=1)
# How long an Idempotency-Key names the task it created.
PQH_IDEMPOTENCY_SECONDS = env_int("PQH_IDEMPOTENCY_SECONDS", 86400, minimum=1)
# Retry-After of a refusal: past a cap or the global bound, and when Redis or PostgreSQL is down.
PQH_RETRY_AFTER_SECONDS = env_int("PQH_RETRY_AFTER_SECONDS", 30, minimum=1)
PQH_UNAVAILABLE_RETRY_AFTER_SECONDS = env_int("PQH_UNAVAILABLE_RETRY_AFTER_SECONDS", 5, minimum=1)
PQH_TASK_SECONDS = env_float("PQH_TASK_SECONDS", 60.0, minimum=0.0)
PQH_TASK_CALLABLE = env_str("PQH_TASK_CALLABLE", "tasks_app.worker.work.limited_f")
PQH_MAX_INPUT_BYTES = env_int("PQH_MAX_INPUT_BYTES", 65536, minimum=1)
# Tokens whose user and weight each web process remembers (0: load them on every request), and
# how long an entry may be used before it is loaded again even if no change was signalled.
PQH_AUTH_CACHE_SIZE = env_int("PQH_AUTH_CACHE_SIZE", 10000, minimum=0)
PQH_AUTH_CACHE_SECONDS = env_float("PQH_AUTH_CACHE_SECONDS", 300.0, minimum=0.0)
PQH_TASK_TIME_LIMIT = env_int("PQH_TASK_TIME_LIMIT", 1800, minimum=1)
# Longer than the hard time limit, or the broker hands a running task to another worker
# (check pqh.E001).
PQH_VISIBILITY_TIMEOUT = env_int("PQH_VISIBILITY_TIMEOUT", 3600, minimum=1)
PQH_LEVELS = len(PQH_LEVEL_BOUNDS) + 1
# What a task costs its user: "tasks" (each task 1, the original's levels) or "time" (the
# seconds it spends in PQH_TASK_CALLABLE, estimated at admission from the user's recent runs,
# or PQH_TASK_SECONDS with no history, and corrected when it ends). With "time" the level
# bounds are seconds of service in the window, per unit of weight (PQH_LEVEL_BOUNDS_SECONDS;
# by default the count bounds times PQH_TASK_SECONDS, the same levels for tasks of that length).
# Only "time" sets levels from them (checks pqh.E003, pqh.E004, pqh.W001).
PQH_CHARGE = env_choice("PQH_CHARGE", "tasks", ("tasks", "time"))
PQH_LEVEL_BOUNDS_SECONDS = env_float_list(
    "PQH_LEVEL_BOUNDS_SECONDS", [b * PQH_TASK_SECONDS for b in PQH_LEVEL_BOUNDS]
)

# --- pqh: what a request may carry; past each limit the answer is a 4xx in JSON ------------
# A request body (413 past it): room for a pretty-printed `x` of PQH_MAX_INPUT_BYTES.
PQH_MAX_BODY_BYTES = env_int("PQH_MAX_BODY_BYTES", 1048576, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = PQH_MAX_BODY_BYTES
# Arrays and objects nested in a JSON body, the outer one included (400 past it).
PQH_MAX_JSON_DEPTH = env_int("PQH_MAX_JSON_DEPTH", 32, minimum=2)
# One header field, `Name: value` (431 past it). The web server lets fields up to
# PQH_SERVER_MAX_HEADER_BYTES through so that Django can answer in JSON; past that the server
# answers on its own (granian's --http1-buffer-size in the Procfile, or gunicorn.conf.py).
PQH_MAX_HEADER_BYTES = env_int("PQH_MAX_HEADER_BYTES", 8192, minimum=1024)
PQH_SERVER_MAX_HEADER_BYTES = env_int("PQH_SERVER_MAX_HEADER_BYTES", 131072, minimum=1024)
# A body holds at least an `x` of PQH_MAX_INPUT_BYTES (check pqh.E005); the server lets every
# field Django answers for through (pqh.E006).

# --- pqh: faults and expiry ---------------------------------------------------------------
# How long a worker retries a database step (claiming a task, storing its result) while
# PostgreSQL is unreachable before it hands the task back to the broker to be run later.
PQH_DB_RETRY_SECONDS = env_float("PQH_DB_RETRY_SECONDS", 300.0, minimum=0.0)
# A task started this many times without finishing (its worker died each time) is not run again
# but fails with a message that says so.
PQH_MAX_ATTEMPTS = env_int("PQH_MAX_ATTEMPTS", 5, minimum=1)
# How often a worker looks for started tasks that no delivery will finish (their hard time
# limit passed more than this long ago and the broker holds no message for them).
PQH_RECONCILE_SECONDS = env_float("PQH_RECONCILE_SECONDS", 60.0, minimum=1.0)
# Finished tasks (history and stored results) older than this many days are deleted by the
# Celery beat job pqh.prune, which runs every PQH_PRUNE_EVERY_SECONDS, PQH_PRUNE_BATCH rows
# per transaction.
PQH_HISTORY_DAYS = env_int("PQH_HISTORY_DAYS", 30, minimum=1)
PQH_PRUNE_EVERY_SECONDS = env_float("PQH_PRUNE_EVERY_SECONDS", 3600.0, minimum=1.0)
PQH_PRUNE_BATCH = env_int("PQH_PRUNE_BATCH", 1000, minimum=1)

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
if PQH_REDIS_CLUSTER and CELERY_BROKER_URL == REDIS_URL:
    raise ImproperlyConfigured(
        "PQH_REDIS_CLUSTER=1 needs CELERY_BROKER_URL set to a plain Redis of its own "
        "(kombu has no Redis Cluster transport)"
    )
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_CACHE_BACKEND = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A worker holds only what it runs: late acknowledgement plus no prefetch means a task sitting in
# the broker can still be overtaken by a better level that arrives after it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("PQH_WORKER_PREFETCH_MULTIPLIER", 1, minimum=1)
CELERY_WORKER_DISABLE_PREFETCH = env_bool("PQH_WORKER_DISABLE_PREFETCH", True)
# The soft limit raises inside the task, so it fails through the normal path and is recorded;
# the hard limit kills the process 30 s later if the work ignores it.
CELERY_TASK_SOFT_TIME_LIMIT = PQH_TASK_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = PQH_TASK_TIME_LIMIT + 30
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
PQH_LEVEL_QUEUES = [f"{PQH_REDIS_PREFIX}.level{level}" for level in range(PQH_LEVELS)]
# One Celery queue per level, so a plain `celery -A pqh_site worker` serves every level.
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in PQH_LEVEL_QUEUES]
CELERY_TASK_DEFAULT_QUEUE = PQH_LEVEL_QUEUES[0]
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # BRPOP the level queues in name order (level0 first) instead of kombu's round robin.
    "queue_order_strategy": "sorted",
    # One bucket: every message of a level queue is equal; order between levels comes from
    # the queue order above, so kombu's priority steps are not involved.
    "priority_steps": [0],
    "visibility_timeout": PQH_VISIBILITY_TIMEOUT,
    # Look for messages of vanished workers (unacknowledged past the visibility timeout) every
    # PQH_RESTORE_SECONDS, not kombu's default of every tenth 10-second tick.
    "unacked_restore_interval": env_int("PQH_RESTORE_SECONDS", 10, minimum=1),
    "unacked_restore_throttle": 1,
    # Keys of the broker live under our prefix too.
    # The fair queue's hash tag (fairqueue.keys): its scripts read these lists.
    "global_keyprefix": f"{{{PQH_REDIS_PREFIX}}}:broker:",
}
# Results live as long as the history (pqh.prune deletes both together); Celery's own daily
# celery.backend_cleanup (added by beat) deletes stored results with no history row after that.
CELERY_RESULT_EXPIRES = timedelta(days=PQH_HISTORY_DAYS)
CELERY_BEAT_SCHEDULE = {
    "pqh-prune": {"task": "pqh.prune", "schedule": PQH_PRUNE_EVERY_SECONDS},
}
# Beat's record of when each job last ran: outside the source tree, one per Redis prefix.
CELERY_BEAT_SCHEDULE_FILENAME = env_str(
    "PQH_BEAT_SCHEDULE_FILE",
    str(Path(tempfile.gettempdir()) / f"pqh-beat-{PQH_REDIS_PREFIX}"),
)
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("PQH_TASK_EVENTS", True)
CELERY_TASK_SEND_SENT_EVENT = False

# --- Logs, metrics, health ----------------------------------------------------------------
# One line per submission, refusal, start and finish on the `pqh.events` logger (events.py), as
# key=value pairs, or JSON (python-json-logger) with PQH_LOG_JSON=1. The events logger has a
# handler of its own, so Celery's worker, which takes over the root logger, keeps the format.
PQH_LOG_JSON = env_bool("PQH_LOG_JSON", False)
# Task inputs and results stay out of the logs (they are users' data) unless asked for: then the
# worker's "Task pqh.run[…] succeeded" line shows the result.
PQH_LOG_TASK_DATA = env_bool("PQH_LOG_TASK_DATA", False)
LOGGING = logging_config(
    json=PQH_LOG_JSON,
    level=env_str("PQH_LOG_LEVEL", "WARNING"),
    events_level=env_str("PQH_EVENT_LOG_LEVEL", "INFO"),
)
# Who may read /metrics (it names users): staff users, and a scraper that sends
# `Authorization: Bearer <PQH_METRICS_TOKEN>` (nobody but staff while it is empty).
PQH_METRICS_TOKEN = os.environ.get("PQH_METRICS_TOKEN", "")
# /metrics gives the pqh_user_* gauges of this many users (those with the largest share
# received or entitled) and one series `user="(others)"` adding up the rest.
PQH_METRICS_TOP_USERS = env_int("PQH_METRICS_TOP_USERS", 50, minimum=0)
# --- pqh: waiting for a result (README, "Waiting for a result"; tasks_app/waits/) ---------
# Where clients reach the wait server (the submission's answer and a task's detail carry
# wait_url and events_url under it): make run's second port, or the one origin of a proxy.
PQH_WAIT_URL = env_str("PQH_WAIT_URL", "http://127.0.0.1:8001").rstrip("/")
# The longest ?wait=S (or Prefer: wait=S) a request may ask for, seconds.
PQH_WAIT_MAX_SECONDS = env_int("PQH_WAIT_MAX_SECONDS", 30, minimum=0)
# Waits and streams open at once in one process of the wait server: per user (429 past it) and
# in all (503 past it).
PQH_WAIT_MAX_PER_USER = env_int("PQH_WAIT_MAX_PER_USER", 100, minimum=1)
PQH_WAIT_MAX_PER_PROCESS = env_int("PQH_WAIT_MAX_PER_PROCESS", 10000, minimum=1)
# An event stream: a comment line every this often (proxies close silent connections), closed
# after this long (the client reconnects with Last-Event-ID), and the retry hint it sends.
PQH_STREAM_HEARTBEAT_SECONDS = env_float("PQH_STREAM_HEARTBEAT_SECONDS", 15.0, minimum=0.1)
PQH_STREAM_SECONDS = env_float("PQH_STREAM_SECONDS", 300.0, minimum=1.0)
PQH_STREAM_RETRY_MS = env_int("PQH_STREAM_RETRY_MS", 3000, minimum=0)

# A worker host's own /metrics (its processes' starts and finishes, for hosts that run no web
# server): the port (0: off) and the address it listens on.
PQH_WORKER_METRICS_PORT = env_int("PQH_WORKER_METRICS_PORT", 0, minimum=0)
PQH_WORKER_METRICS_ADDRESS = env_str("PQH_WORKER_METRICS_ADDRESS", "127.0.0.1")
# How long /readyz waits for Redis and for a worker's answer to a ping.
PQH_HEALTH_TIMEOUT = env_float("PQH_HEALTH_TIMEOUT", 1.0, minimum=0.05)
# A running task's progress is stored at most this often (one SQL write each).
PQH_PROGRESS_INTERVAL = env_float("PQH_PROGRESS_INTERVAL", 1.0, minimum=0.0)

# --- pqh: the door (README, "Who may come in"; pqh_site/door.py) -----------------------------
# Request rates, as "N/period" (s, m, h, d): a bucket of N requests refilled at N per period;
# "off" for none. Per user: writes (submissions and cancels) and reads, each overridable per
# user in the admin; per client address: anonymous requests and failed token lookups.
PQH_SUBMIT_RATE = env_str("PQH_SUBMIT_RATE", "120/m")
PQH_READ_RATE = env_str("PQH_READ_RATE", "1200/m")
PQH_ANON_RATE = env_str("PQH_ANON_RATE", "60/m")
for _name in ("PQH_SUBMIT_RATE", "PQH_READ_RATE", "PQH_ANON_RATE"):
    try:
        _parse_rate(globals()[_name])
    except ValueError as _exc:
        raise ImproperlyConfigured(f"{_name}: {_exc}") from None
# The client address: X-Forwarded-For is read only from these proxies (addresses or networks,
# comma-separated); without them the socket's peer is the client, whatever a header says.
PQH_TRUSTED_PROXIES = [
    p.strip() for p in os.environ.get("PQH_TRUSTED_PROXIES", "").split(",") if p.strip()
]
try:
    _parse_networks(PQH_TRUSTED_PROXIES)
except ValueError as _exc:
    raise ImproperlyConfigured(f"PQH_TRUSTED_PROXIES: {_exc}") from None
# Failed logins (django-axes): this many failed password checks from one client address within
# the cool-off lock the address out of password logins until the cool-off has passed since the
# last one. Refused attempts do not extend it.
PQH_LOGIN_FAILURE_LIMIT = env_int("PQH_LOGIN_FAILURE_LIMIT", 10, minimum=1)
PQH_LOGIN_COOLOFF_SECONDS = env_int("PQH_LOGIN_COOLOFF_SECONDS", 900, minimum=1)
AUTHENTICATION_BACKENDS = [
    "users_app.lockout.LockoutBackend",  # first: refuses a locked-out address before any hash
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("PQH_LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = PQH_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=PQH_LOGIN_COOLOFF_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = False  # users_app.lockout forgets only the user name's own failures
AXES_DISABLE_ACCESS_LOG = True  # no row per successful login
AXES_CLIENT_IP_CALLABLE = "pqh_site.client_address.client_address"
AXES_LOCKOUT_CALLABLE = "users_app.lockout.lockout_response"
AXES_VERBOSE = False
