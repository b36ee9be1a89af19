"""reset_window, cancel_queued and fairness_report: tools for operators, in-process and as a child."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from celery import states
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_results.models import TaskResult

from pqh_site.core import core
from tasks_app.management.commands.fairness_report import parse_since
from tasks_app.models import TaskRecord
from tasks_app.services.submission import task_submit
from tests.queue_state import queue_unknown, record_submission

from .test_commands import manage

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), ("1.5h", 5400), ("1:30:00", 5400)],
)
def test_since_reads_the_durations_people_type(text, seconds):
    assert parse_since(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("reset_window", "nobody"), "no user named 'nobody'"),
        (("reset_window",), "give either a USERNAME or --all"),
        (("reset_window", "alice", "--all"), "give either a USERNAME or --all"),
        (("cancel_queued", "nobody"), "no user named 'nobody'"),
        (("cancel_queued", "alice", "--level", "6"), r"--level must be an integer from 0 to 5"),
        (("cancel_queued", "alice", "--level", "-1"), r"--level must be an integer from 0 to 5"),
        (("cancel_queued", "alice", "--level", "top"), r"got 'top'"),
        (("fairness_report", "--since", "yesterday"), "--since must be a positive duration"),
        (("fairness_report", "--since", "0m"), "--since must be a positive duration"),
    ],
)
def test_bad_input_is_a_clear_error(alice, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_reset_window_forgets_one_user_or_everyone(alice, bob, charlie):
    for i in range(3):
        task_submit(user=alice[0], x=i)
    task_submit(user=bob[0], x=0)
    task_submit(user=charlie[0], x=0)
    assert run("reset_window", "alice").splitlines() == [
        "alice: forgot 3 submission(s)",
        "reset 1 window(s), forgetting 3 submission(s) in all",
    ]
    assert (
        core().windows.count(user_id=alice[0].pk) == 0
        and core().windows.count(user_id=bob[0].pk) == 1
    )
    assert json.loads(run("reset_window", "--all", "--json")) == {
        "users": [{"user": "bob", "forgotten": 1}, {"user": "charlie", "forgotten": 1}],
        "forgotten": 2,
    }
    assert (
        core().windows.count(user_id=bob[0].pk) == 0
        and core().windows.count(user_id=charlie[0].pk) == 0
    )


def test_cancel_queued_cancels_one_users_queued_tasks_at_a_level_as_the_api_does(alice, bob):
    alices = [task_submit(user=alice[0], x=i) for i in range(8)]  # levels 0, 1×5, 2, 2
    bobs = task_submit(user=bob[0], x=0)
    TaskRecord.objects.filter(pk=alices[0].pk).update(status=states.STARTED)
    out = json.loads(run("cancel_queued", "alice", "--level", "1", "--json"))
    assert out["level"] == 1 and out["not_cancellable"] == 0
    assert sorted(out["cancelled"]) == sorted(str(r.pk) for r in alices[1:6])
    # As the API's cancel: none of them waits in the fair queue any more.
    seqs = dict(TaskRecord.objects.values_list("pk", "queue_seq"))
    gone = queue_unknown([(str(pk), seqs[pk]) for pk in seqs])
    assert set(out["cancelled"]) <= set(gone)
    assert str(bobs.pk) not in gone
    assert TaskResult.objects.get(task_id=out["cancelled"][0]).status == states.REVOKED
    assert run("cancel_queued", "alice").strip() == "cancelled 2 queued task(s) of alice"
    statuses = dict(TaskRecord.objects.values_list("pk", "status"))
    assert statuses[alices[0].pk] == states.STARTED
    assert statuses[bobs.pk] == states.PENDING
    assert {statuses[r.pk] for r in alices[1:]} == {states.REVOKED}


def test_fairness_report_prints_waits_per_level_and_shares_beside_weights(alice, charlie):
    now = timezone.now()
    for user, run_seconds, waits in ((alice[0], 10, [1, 3]), (charlie[0], 30, [2])):
        for wait in waits:
            TaskRecord.objects.create(
                user=user,
                level=0 if user == charlie[0] else 2,
                weight=user.profile.weight,
                count_before=0,
                status=states.SUCCESS,
                submitted_at=now - timedelta(seconds=300 + wait),
                started_at=now - timedelta(seconds=300),
                finished_at=now - timedelta(seconds=300 - run_seconds),
            )
    old = now - timedelta(hours=3)
    TaskRecord.objects.create(
        user=alice[0],
        level=5,
        weight=1,
        count_before=0,
        status=states.SUCCESS,
        submitted_at=old,
        started_at=old,
        finished_at=old,
    )
    report = json.loads(run("fairness_report", "--json"))
    levels = {row["level"]: row for row in report["levels"]}
    assert levels[2]["started"] == 2 and levels[2]["p50"] == pytest.approx(2.0)
    assert levels[0]["started"] == 1 and levels[5]["started"] == 0
    users = {row["username"]: row for row in report["users"]}
    # Alice: 2 × 10 s of 50 s, at level 2; Charlie at level 0. Neither shared a level, so
    # each was entitled to what it received, whatever the weights (1 and 6).
    assert users["alice"]["share"] == users["alice"]["entitled"] == pytest.approx(0.4)
    assert users["charlie"]["entitled"] == pytest.approx(0.6)
    assert users["charlie"]["weight"] == 6 and users["charlie"]["due_seconds"] == 0.0
    assert report["jain_index"] is None
    text = run("fairness_report", "--since", "15m").splitlines()
    assert (
        "  alice: weight 1, no team, 20.0 s, share 0.400, entitled 0.400; "
        "never shared its level while served"
    ) in text
    assert text[-1] == (
        "3 task(s) started, 2 user(s) had tasks, 0.0 s served while users shared a level; "
        "no contention in the period"
    )
    # Three hours back, the old level-5 task is in the report too.
    longer = json.loads(run("fairness_report", "--since", "4h", "--json"))
    assert {row["level"]: row["started"] for row in longer["levels"]}[5] == 1


@pytest.mark.django_db(transaction=True)  # the child process must see the committed rows
def test_the_commands_run_as_child_processes_on_the_test_database(alice):
    # Rows and window entries made directly, not submitted: a worker that other tests left
    # running must not start these tasks before the command cancels them.
    now = timezone.now()
    for level in (0, 1):
        record = TaskRecord.objects.create(
            user=alice[0], level=level, weight=1, count_before=level, submitted_at=now
        )
        record_submission(user_id=alice[0].pk, member=str(record.pk), now=now.timestamp())
    report = manage("fairness_report", "--since", "10m", "--json")
    assert report.returncode == 0, report.stderr
    assert [u["username"] for u in json.loads(report.stdout)["users"]] == ["alice"]
    cancelled = manage("cancel_queued", "alice", "--level", "1")
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == "cancelled 1 queued task(s) of alice at level 1"
    reset = manage("reset_window", "--all")
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.splitlines()[-1] == "reset 1 window(s), forgetting 2 submission(s) in all"
    assert core().windows.count(user_id=alice[0].pk) == 0


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("cancel_queued", "alice", "--level", "9"), "--level must be an integer from 0 to 5"),
        (("fairness_report", "--since", "soon"), "--since must be a positive duration"),
    ],
    ids=["level", "since"],
)
def test_bad_input_in_a_child_process_is_one_line_and_a_non_zero_exit(alice, args, line):
    proc = manage(*args)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and line in lines[0], proc.stderr
