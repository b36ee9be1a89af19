"""The submitting process of a run: Django is set up here, once, with the run's settings.

The runner starts `python -m bench.fairness --child SPEC` beside the run's Celery worker. It
creates nothing until told: it writes `ready`, waits for `go`, submits as the scenario's plan
says through `tasks_app.services.submission.task_submit` (the service the API calls), polls the database
until every task of the run has ended (or a timeout), and writes the rows to `rows.json`.
`--child-prepare SPEC` migrates the benchmark database, empties its task tables and creates the
users, once per invocation.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def _django():
    import django

    django.setup()


def child_prepare(spec: dict[str, Any]) -> None:
    """Migrate the benchmark database, empty its task tables and create the users."""
    _django()
    from django.core.management import call_command
    from django_celery_results.models import TaskResult

    from tasks_app.models import TaskRecord
    from users_app.models import Team
    from users_app.services import api_user_create, team_add, team_create

    call_command("migrate", verbosity=0, interactive=False)
    # The bench database is scratch space (the orchestrator holds a lock on it): rows a killed
    # run left PENDING would otherwise be picked up by a worker's recovery sweep.
    TaskRecord.objects.all().delete()
    TaskResult.objects.all().delete()
    for name, weight in spec["users"].items():
        api_user_create(username=name, weight=weight)
    for team, members in spec.get("teams", {}).items():  # S7
        if not Team.objects.filter(name=team).exists():
            team_create(name=team, weight=1)
        team_add(name=team, usernames=members)


def child_run(spec: dict[str, Any]) -> None:
    """Wait for the go, submit the run's tasks, wait until they end, write their rows."""
    _django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django_celery_results.models import TaskResult

    from tasks_app.models import TaskRecord
    from tasks_app.services.submission import task_submit

    workdir = Path(spec["workdir"])
    tag, plan, scenario = spec["tag"], spec["plan"], spec["scenario"]
    users = {
        u.username: u
        for u in get_user_model()
        .objects.select_related("profile")
        .filter(username__in=spec["usernames"])
    }
    for user in users.values():
        user.profile  # noqa: B018 - load the weight now, not during the timed submissions
    submit_ms: dict[str, float] = {}

    def submit(username: str, cls: str, i: int, seconds: float | None = None) -> None:
        x = {"run": tag, "cls": cls, "i": i}
        if seconds is not None:
            x["seconds"] = seconds  # bench.workload.sleep_for sleeps this long
        t = time.perf_counter()
        record = task_submit(user=users[username], x=x)
        submit_ms[str(record.pk)] = (time.perf_counter() - t) * 1000

    def sleep_until(deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    if scenario == "S2" and plan.get("history"):
        # Give every user a window history of 36 x weight submissions, so that all of them
        # are at level 5 under the default bounds: what weights buy within one level.
        # Under PQH_CHARGE=time each is charged d seconds (what a run of limited_f takes), one
        # more per user so that a float sum of 36 x weight x d cannot fall just short of the
        # level-5 bound of 36 x d seconds per weight.
        from pqh_site.core import core

        timed = getattr(settings, "PQH_CHARGE", "tasks") == "time"
        keys, now = core().keys, time.time()
        for name, weight, _n, _label in plan["users"]:
            uid = users[name].pk
            # Written as admit.lua records submissions (includes/window.lua): each member
            # scored by its time in the window, and under time its charge in the hash beside.
            pipe = core().redis.pipeline(transaction=True)
            for i in range(36 * weight + (1 if timed else 0)):
                pipe.zadd(keys.window(uid), {f"history-{tag}-{i}": now})
                if timed:
                    pipe.hset(keys.charges(uid), f"history-{tag}-{i}", repr(spec["d"]))
                    pipe.hincrbyfloat(keys.charges(uid), "sum", spec["d"])
            pipe.pexpire(keys.window(uid), settings.PQH_WINDOW_SECONDS * 1000)
            pipe.pexpire(keys.charges(uid), settings.PQH_WINDOW_SECONDS * 1000)
            pipe.execute()

    if scenario == "S7":
        from users_app.services import team_set_weight

        # Every run starts from the plan's weights (a run before may have raised one).
        for team, (weight, _members) in plan["teams"].items():
            team_set_weight(name=team, weight=weight)

    (workdir / "ready").write_text("")
    go = workdir / "go"
    while not go.exists():
        time.sleep(0.005)

    t_go = time.time()
    marks: dict[str, float] = {}
    if scenario == "S1":
        for i in range(plan["backlog"]):
            submit(plan["hog"], "hog", i)
        time.sleep(plan["delay"])
        marks["newcomers_arrive"] = time.time()
        for i, name in enumerate(plan["newcomers"]):
            submit(name, "newcomer", i)
    elif scenario == "S2":
        longest = max(n for _name, _w, n, _label in plan["users"])
        for i in range(longest):  # round robin: every user submits at the same rate
            for name, _weight, n, label in plan["users"]:
                if i < n:
                    submit(name, label, i)
    elif scenario in ("S6", "S6B", "S7"):
        # Everything at once, interleaved so that every user's submissions are spread over the
        # same second or so (user k's i-th task goes at fraction i / n_k of the sequence):
        # all users are backlogged from the start.
        order = sorted(
            (i / len(lengths), k, i)
            for k, (_name, _w, lengths, _label) in enumerate(plan["users"])
            for i in range(len(lengths))
        )
        for _frac, k, i in order:
            name, _weight, lengths, label = plan["users"][k]
            submit(name, label, i, lengths[i])
        if scenario == "S7":
            # Mid-run, the operator raises team B's weight, as `manage.py team weight` does:
            # the Team row is saved, and after its commit the team's waiting tasks are tagged
            # again at the new weight (tasks_app.signals).
            from users_app.services import team_set_weight

            change = plan["reweight"]
            sleep_until(time.monotonic() + change["after_s"] - (time.time() - t_go))
            marks["reweight_asked"] = time.time()
            team_set_weight(name=change["team"], weight=change["weight"])
            marks["reweight_done"] = time.time()
    elif scenario == "S3":
        for i in range(plan["backlog"]):
            submit(plan["hog"], "hog", i)
        start = time.monotonic()
        marks["stream_start"] = time.time()
        for i, name in enumerate(plan["fresh"]):
            sleep_until(start + i * plan["interval"])
            submit(name, "fresh", i)
        marks["stream_end"] = time.time()
    elif scenario == "S4":
        for i in range(plan["n"]):
            submit(plan["user"], "solo", i)
    elif scenario == "S5":
        # Warm every pool process (its first task opens a database connection), then idle.
        for i in range(plan["warmup"]):
            submit(plan["user"], "warmup", i)
        time.sleep(spec["d"] + plan["gap"])
        start = time.monotonic()
        for i in range(plan["n"]):
            sleep_until(start + i * plan["gap"])
            submit(plan["user"], "single", i)
    marks["submitted"] = time.time()

    mine = TaskRecord.objects.filter(input__run=tag)
    deadline = time.monotonic() + spec["timeout"]
    timed_out = False
    while mine.filter(finished_at__isnull=True).exists():
        if time.monotonic() > deadline:
            timed_out = True
            break
        time.sleep(0.05)

    def ts(value):
        return value.timestamp() if value is not None else None

    # When the work callable ran: both limited_f and bench.workload.sleep_for return their
    # start and end (time.time()) in the stored result.
    work: dict[str, tuple[float | None, float | None]] = {}
    for task_id, stored in TaskResult.objects.filter(
        task_id__in=[str(pk) for pk in mine.values_list("pk", flat=True)]
    ).values_list("task_id", "result"):
        try:
            value = json.loads(stored) if stored else None
        except ValueError:
            value = None
        if isinstance(value, dict):
            work[str(task_id)] = (value.get("init_timestamp"), value.get("done_timestamp"))

    def opt(record, name):
        """A TaskRecord field that only the time-charging queue has (None before it)."""
        value = getattr(record, name, None)
        return value if value is None or isinstance(value, str) else float(value)

    rows = [
        {
            "task_id": str(r.pk),
            "user": r.user.username,
            "cls": r.input["cls"],
            "i": r.input["i"],
            "level": r.level,
            "weight": r.weight,
            "count_before": r.count_before,
            "aged": r.aged,
            "status": r.status,
            "submitted": ts(r.submitted_at),
            "started": ts(r.started_at),
            "finished": ts(r.finished_at),
            "submit_ms": submit_ms.get(str(r.pk)),
            "asked_s": r.input.get("seconds"),
            "work_start": work.get(str(r.pk), (None, None))[0],
            "work_end": work.get(str(r.pk), (None, None))[1],
            "charge": opt(r, "charge"),
            "usage_before": opt(r, "usage_before"),
            "cost": opt(r, "cost"),
            "run_seconds": opt(r, "run_seconds"),
        }
        for r in mine.select_related("user").order_by("submitted_at")
    ]
    effective = {
        name: getattr(settings, name, None)
        for name in (
            "PQH_REDIS_PREFIX",
            "PQH_FAIRNESS",
            "PQH_CHARGE",
            "PQH_LEVEL_BOUNDS_SECONDS",
            "PQH_TASK_SECONDS",
            "PQH_TASK_CALLABLE",
            "PQH_LEVEL_BOUNDS",
            "PQH_WINDOW_SECONDS",
            "PQH_MAX_WAIT_SECONDS",
            "PQH_RELEASE_BUFFER",
            "PQH_RELEASE_TICK_SECONDS",
        )
    }
    out = {"rows": rows, "timed_out": timed_out, "t_go": t_go, "marks": marks}
    out["settings"] = effective
    (workdir / "rows.json").write_text(json.dumps(out))
    ids = [row["task_id"] for row in rows]
    TaskResult.objects.filter(task_id__in=ids).delete()
    mine.delete()
