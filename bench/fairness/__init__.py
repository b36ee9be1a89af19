"""Fairness benchmark: scenarios S1-S7 (described in docs/fairness.md) on the real stack.

Every scenario runs side by side in one invocation: the FIFO baseline (PQH_FAIRNESS=0, every
task at level 0, published straight to Celery) and the fairness policy under one or both
charges (PQH_CHARGE=tasks: every task costs 1; PQH_CHARGE=time: a task costs the seconds it
spent in the work callable). S3 also runs the policy without aging, "strict". Each run
(scenario, mode, charge, W) gets its own Celery worker with `-c W`, its own submitting process
that calls `tasks_app.services.submission.task_submit` after `django.setup()`, and its own Redis prefix;
times come from the TaskRecord rows (submitted_at, started_at, finished_at) and from the work's
own result (when the work callable ran). S6 and S6b have tasks of different lengths: their
worker runs bench.workload.sleep_for, which sleeps the seconds each submission carries; so
does S7's (teams: one of one user against one of four, then a team's weight changed mid-run).

    .venv/bin/python -m bench.fairness            # the default run (about 10 minutes)
    .venv/bin/python -m bench.fairness --quick    # a smoke run (about a minute)

Writes bench/results/fairness.json, one timeline PNG per scenario and W and, for S6 and S6b, a
plot of every user's normalised service over time. See bench/README.md.

By job: scenarios.py (what each run submits), submitter.py (the process that submits),
runner.py (processes and the run loop), timeline.py, analysis.py and scenario_figures.py (the
figures from the rows), plots.py (the PNGs), report.py (the summary), __main__.py (the CLI).
"""
