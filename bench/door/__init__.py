"""The door benchmark: tries before a refusal, a quiet and a heavy user beside each attacker, the
CPU a refusal costs, and what the limits themselves cost (issue "Fair at the door too").

Run as `.venv/bin/python -m bench.door` (see __main__.py and bench/README.md). By job:
scenarios.py (the users and their rates, the servers' settings, the attackers, the targets),
clients.py (wrk with bench/wrk/door.lua, the open-loop quiet user, the tries), runner.py (the
phases, each from the same state and metered), probes.py (one refusal, counted in process),
analysis.py (the figures and the targets), report.py (the table on stdout), __main__.py (the
command line). The server, wrk's CPU meter and the database come from bench.api.
"""
