"""After the run: what the database, Redis and the logs hold, the checks on it, the load figures.

Every check is in bench/README.md ("Checks"); the run passes when all hold.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from fairqueue.stats import percentile

from .scenario import Call, Load

if TYPE_CHECKING:
    from .runner import Run


def leaked_cap_places(run: Run) -> dict[str, list[str]]:
    """Return, per user, the active-set members (places under the cap) of no live task."""
    import uuid

    from django.db import close_old_connections

    from pqh_site.core import core
    from tasks_app.models import TaskRecord

    close_old_connections()
    redis = core().redis
    leaked = {}
    for name, uid in run.user_ids.items():
        members = set(redis.zrange(core().keys.active(uid), 0, -1))
        ids = []
        for member in members:
            with contextlib.suppress(ValueError):
                ids.append(uuid.UUID(member))
        live = {
            str(pk)
            for pk in TaskRecord.objects.filter(
                pk__in=ids, status__in=("PENDING", "STARTED")
            ).values_list("pk", flat=True)
        }
        if members - live:
            leaked[name] = sorted(members - live)
    return leaked


def settled_cap_places(run: Run, timeout: float = 10.0) -> dict[str, list[str]]:
    """leaked_cap_places, once the last ends had time to free theirs (just after the row)."""
    deadline = time.monotonic() + timeout
    while (leaked := leaked_cap_places(run)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return leaked


def checks(run: Run, load: Load) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the outcome (what the database, Redis and the logs hold) and every check on it."""
    from django.db import close_old_connections
    from django_celery_results.models import TaskResult

    from pqh_site.core import core
    from tasks_app.models import TaskRecord

    close_old_connections()
    calls = load.calls
    submits = [c for c in calls if c.kind == "submit"]
    accepted = {c.task_id: c for c in submits if c.status == 202}
    rows = {
        str(pk): (status, n)
        for pk, status, n in TaskRecord.objects.values_list("pk", "status", "input__n")
    }
    statuses = Counter(status for status, _ in rows.values())
    stored = defaultdict(list)
    for task_id, status in TaskResult.objects.values_list("task_id", "status"):
        stored[task_id].append(status)
    final = ("SUCCESS", "FAILURE", "REVOKED")
    not_final = sorted(t for t, (s, _) in rows.items() if s not in final)
    cancelled_ok = {c.n for c in calls if c.kind == "cancel" and c.status == 200}
    asked_to_fail = {c.n for c in accepted.values() if c.n % run.args.fail_every == 0}
    failed_ns = {n for s, n in rows.values() if s == "FAILURE"}
    revoked_ns = {n for s, n in rows.values() if s == "REVOKED"}
    bad_results = sorted(t for t, (s, _) in rows.items() if s in final and stored.get(t) != [s])
    runs = (
        Counter(int(line) for line in run.run_log.read_text().split() if line.strip().isdigit())
        if run.run_log.exists()
        else Counter()
    )
    ended_ns = {n for s, n in rows.values() if s in ("SUCCESS", "FAILURE")}
    never_ran = sorted(n for n in ended_ns if runs[n] == 0 and n not in revoked_ns)

    windows: list[tuple[float, float]] = [
        (f["start"] - 0.5, f["end"] + 2.0) for f in run.faults if f["fault"] in ("db", "redis")
    ]

    def in_fault(call: Call) -> bool:
        return any(call.started <= end and call.ended >= start for start, end in windows)

    errors_5xx = [c for c in calls if c.status >= 500 and not (c.status == 503 and in_fault(c))]
    no_answer = [c for c in calls if c.status == 0]

    # Windows: what each user's window must hold since the last Redis restart.
    restart = [f for f in run.faults if f["fault"] == "redis" and "error" not in f]
    since = (restart[-1]["start"], restart[-1]["end"]) if restart else (-1.0, -1.0)
    redis = core().redis
    window_report = {}
    window_ok = True
    for name, uid in run.user_ids.items():
        members = set(redis.zrange(core().keys.window(uid), 0, -1))
        mine = [c for c in accepted.values() if c.user == name]
        must = {c.task_id for c in mine if c.started >= since[1]}
        must_not = {c.task_id for c in mine if c.ended <= since[0]}
        ok = members <= set(accepted) and must <= members and not (members & must_not)
        window_ok &= ok
        window_report[name] = {
            "count": len(members),
            "accepted_since_restart": len(must),
            "during_restart": len(mine) - len(must) - len(must_not),
            "ok": ok,
        }

    left_queued = core().queue.waiting_count() + sum(core().queue.broker_lengths())
    leaked = settled_cap_places(run)
    dead_hosts = [host for host in run.hosts if not run.procs.running(host)]
    logs = "".join(run.procs.log(host) for host in run.hosts)
    recovery = {
        "db_retries_logged": logs.count("PostgreSQL is unavailable"),
        "handed_back_not_claimed": logs.count("reject requeue=True: not claimed"),
        "handed_back_not_finished": logs.count("reject requeue=True: not finished"),
        "requeued_recorded_not_queued": logs.count("was recorded but not queued"),
        "requeued_started_never_finished": logs.count("started and was never finished"),
    }
    outcome = {
        "accepted": len(accepted),
        "recorded": len(rows),
        "finished": statuses["SUCCESS"],
        "failed": statuses["FAILURE"],
        "cancelled": statuses["REVOKED"],
        "not_final": len(not_final),
        "not_final_sample": not_final[:10],
        "refused_503": sum(1 for c in submits if c.status == 503),
        "refused_429": sum(1 for c in submits if c.status == 429),
        "stored_results": sum(len(v) for v in stored.values()),
        "results_disagreeing": bad_results[:10],
        "runs_completed": sum(runs.values()),
        "tasks_run_more_than_once": sum(1 for n in ended_ns if runs[n] > 1),
        "max_runs_of_one_task": max((runs[n] for n in ended_ns), default=0),
        "windows": window_report,
        "left_in_queues": left_queued,
        "leaked_cap_places": {name: len(ids) for name, ids in leaked.items()},
        "leaked_cap_places_sample": [i for ids in leaked.values() for i in ids][:10],
        "worker_hosts_dead_at_the_end": dead_hosts,
        "worker_crashes_logged": logs.count("Unrecoverable error"),
        "recovery_in_worker_logs": recovery,
    }
    total = statuses["SUCCESS"] + statuses["FAILURE"] + statuses["REVOKED"]
    checks = {
        "every_accepted_task_ended": (not not_final, f"{len(not_final)} not ended"),
        "accepted=recorded=finished+failed+cancelled": (
            len(accepted) == len(rows) == total and set(accepted) == set(rows),
            f"{len(accepted)} accepted, {len(rows)} recorded, {total} ended",
        ),
        "failed_exactly_those_asked_to": (
            failed_ns == asked_to_fail - revoked_ns,
            f"{len(failed_ns)} failed, {len(asked_to_fail - revoked_ns)} asked",
        ),
        "cancelled_exactly_those_cancelled": (
            revoked_ns == cancelled_ok,
            f"{len(revoked_ns)} revoked, {len(cancelled_ok)} cancels answered 200",
        ),
        "one_stored_result_per_ended_task": (not bad_results, f"{len(bad_results)} wrong"),
        "every_ended_task_ran": (not never_ran, f"{len(never_ran)} ended without a run"),
        "no_5xx_but_deliberate_503": (
            not errors_5xx,
            "; ".join(f"{c.kind} {c.status} at {c.started:.1f}s {c.error}" for c in errors_5xx[:5])
            or "none",
        ),
        "no_connection_errors": (not no_answer, f"{len(no_answer)} calls without an answer"),
        "windows_count_since_last_redis_restart": (window_ok, "see outcome.windows"),
        "queues_empty_at_the_end": (not left_queued, f"{left_queued} left in Redis"),
        "no_leaked_cap_places": (
            not leaked,
            f"{sum(len(ids) for ids in leaked.values())} places held by no live task",
        ),
        "every_worker_host_running_at_the_end": (
            not dead_hosts,
            f"{', '.join(dead_hosts) or 'none'} stopped",
        ),
        "every_fault_injected": (
            len(run.faults) == len(run.args.faults) and not any("error" in f for f in run.faults),
            "; ".join(f"{f['fault']}: {f.get('error', 'ok')}" for f in run.faults) or "none",
        ),
    }
    return outcome, {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()}


def load_figures(load: Load, args: argparse.Namespace, submitted_s: float, ended: float):
    """The JSON's `load`: requests by kind and status, the pace, POST latency, the last end."""
    latencies = [c.ended - c.started for c in load.calls if c.kind == "submit"]
    return {
        "requests": len(load.calls),
        "by_kind": dict(Counter(c.kind for c in load.calls)),
        "statuses": {str(k): v for k, v in Counter(c.status for c in load.calls).items()},
        "clients": args.clients,
        "users": args.users,
        "submission_phase_s": round(submitted_s, 1),
        "submissions_per_s": round(args.submissions / submitted_s, 1),
        "submit_latency_ms": {
            "p50": round(1000 * (percentile(latencies, 50) or 0), 1),
            "p99": round(1000 * (percentile(latencies, 99) or 0), 1),
            "max": round(1000 * max(latencies, default=0), 1),
        },
        "all_ended_at_s": round(ended, 1),
    }
