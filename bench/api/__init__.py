"""API load benchmark: every route under wrk, the depth table, the soak, the profile.

Run as `.venv/bin/python -m bench.api` (see __main__.py and bench/README.md). By job:
scenarios.py (the routes, the users, the queue's state and wrk's targets), server.py (the
Procfile's web server through honcho), driver.py (wrk, and CPU per request), probes.py (Redis
memory, SQL and Redis round trips per request, in this process), peer.py (the peer of
bench/peer/ beside pqh), runner.py (the table, the depth table, the soak, the profile),
analysis.py (medians of rounds, profile shares), report.py (the tables on stdout), __main__.py
(the command line).
"""
