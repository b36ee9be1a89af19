"""The worker path: tasks a second through two slots, pqh against the peer's worker.

`python -m bench.workers` (make bench-workers) queues N tasks (400) of each length (0 and
50 ms) before any worker runs, then starts `celery worker -c 2`, and times the finishes from the
first to the last (the steady state): tasks per second and ms of slot per task, for pqh (this
tree, and with --before another tree, e.g. main's checkout, side by side) and for the peer, the
worker a Django team writes without pqh (bench/workers/peer: Celery's "First steps with Django"
with django-celery-results storing every result in PostgreSQL). Each system has its own
redis-server and database. With --profile, py-spy samples each worker and the run lists the
top items. See bench/README.md and docs/performance.md ("The worker path").
"""
