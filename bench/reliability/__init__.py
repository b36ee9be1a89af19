"""Reliability benchmark: load over HTTP while a worker host dies, PostgreSQL blinks, Redis empties.

Dozens of clients submit thousands of tasks for several users over loopback HTTP to the web
server as the Procfile runs it, while worker hosts run them. In the middle of the run, one
after another: a whole worker host is SIGKILLed and started again, the workers' connection to
PostgreSQL is cut for several seconds (they reach it through a TcpProxy), and Redis, which
everything uses (a redis-server of the benchmark's own), is restarted empty. Then it waits for
every accepted task to end and checks that nothing was lost:

- every accepted task has a final state, and accepted = recorded = finished + failed + cancelled;
- failed are exactly the tasks asked to fail, cancelled exactly those whose cancel answered 200;
- one stored result per ended task, agreeing with its history row;
- no 5xx but the 503s of a fault, and no connection errors (a 429, a user at its cap of tasks
  queued or running, is a deliberate refusal like those 503s: counted, never accepted);
- each user's window holds exactly the accepted submissions made since the last Redis restart;
- nothing left in Redis's queues, no place under a user's cap held by a task that has ended,
  and every worker host still running.

    .venv/bin/python -m bench.reliability             # the default run (a few minutes)
    .venv/bin/python -m bench.reliability --quick     # the smaller version `make test` runs

Writes bench/results/reliability.json and prints a summary; exits 1 if a check failed. See
bench/README.md.

By job: scenario.py (the settings and the paced HTTP load), runner.py (the services, processes
and the run), faults.py (the three faults), analysis.py (the checks and the figures), report.py
(the summary), __main__.py (the command line). The task the workers run is
bench.workload.sleep_and_log.
"""
