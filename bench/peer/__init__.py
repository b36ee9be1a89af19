"""The peer: the service a Django team writes without pqh, for bench.api to measure beside it.

Celery's "First steps with Django" set-up (proj/celery.py, proj/__init__.py), DRF token
authentication, a view that calls `.delay()` and a poll through `AsyncResult` with
django-celery-results storing results in PostgreSQL, Django's default middleware. It lives in
bench/ only: nothing in pqh imports it. bench/README.md says how bench.api runs it.
"""
