"""Progress: the work reports how far it is, and a poll shows it while the task runs."""

import json

import pytest

from tasks_app.services.submission import task_submit
from tasks_app.worker.progress import ProgressReporter, accepts_progress, call_with_progress
from tasks_app.worker.work import limited_f

from .conftest import make_user, wait_for


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_callable_without_progress_is_called_as_before():
    def plain(x):
        return x * 2

    def keyword(x, *, progress=None):
        progress(0.5, "half")
        return x

    def anything(x, **kwargs):
        return sorted(kwargs)

    reports = []
    assert not accepts_progress(plain) and accepts_progress(keyword) and accepts_progress(anything)
    assert call_with_progress(plain, 2, lambda f, m="": reports.append(f)) == 4
    assert call_with_progress(keyword, 3, lambda f, m="": reports.append((f, m))) == 3
    assert call_with_progress(anything, 1, print) == ["progress"]
    # Without a progress function the callable is called with x alone.
    assert call_with_progress(anything, 1, None) == []
    assert reports == [(0.5, "half")]


def test_reports_are_stored_at_most_once_per_interval_but_the_last_always():
    clock, stored = Clock(), []
    report = ProgressReporter(stored.append, interval=1.0, clock=clock, wall_clock=lambda: 5.0)
    clock.now += 0.5
    report(0.05, "dropped: the task started 0.5 s ago")
    clock.now += 0.6
    report(0.1, "a")
    clock.now += 0.5
    report(0.2, "dropped: too soon")
    clock.now += 0.6
    report(1.7, "clamped to 1")
    clock.now += 0.1
    report(1.0, "final, even if soon")
    assert [(m["fraction"], m["message"]) for m in stored] == [
        (0.1, "a"),
        (1.0, "clamped to 1"),
        (1.0, "final, even if soon"),
    ]
    assert stored[0]["updated_at"] == 5.0


def test_a_task_shorter_than_the_interval_stores_no_progress(settings):
    settings.PQH_TASK_SECONDS = 0.05
    stored = []
    limited_f("x", progress=ProgressReporter(stored.append, interval=1.0))
    assert stored == []


def test_a_failed_store_does_not_stop_the_work():
    def broken(meta):
        raise ConnectionError("database went away")

    ProgressReporter(broken, interval=0)(0.5, "still fine")


def test_limited_f_reports_its_progress_in_tenths(settings):
    settings.PQH_TASK_SECONDS = 0.05
    reports = []
    result = limited_f("x", progress=lambda f, m="": reports.append((f, m)))
    assert [round(f, 2) for f, _ in reports] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert reports[4][1] == "0.0 of 0.05 s"
    assert result["done_timestamp"] - result["init_timestamp"] >= 0.05
    assert limited_f("y")["input_x"] == "y"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "solo_worker",
    [{"PQH_TASK_SECONDS": "2.5", "PQH_PROGRESS_INTERVAL": "0.3", "PQH_LOG_JSON": "1"}],
    indirect=True,
)
def test_a_running_task_shows_its_progress_then_its_result(solo_worker):
    from .conftest import client_for

    user, token = make_user("alice")
    client = client_for(token)
    record = task_submit(user=user, x="slow")

    def progress_seen():
        body = client.get(f"/api/tasks/{record.pk}/").json()
        return body if body["status"] == "PROGRESS" else None

    first = wait_for(progress_seen, timeout=30)
    assert 0 < first["progress"]["fraction"] < 1 and " of 2.5 s" in first["progress"]["message"]
    assert first["result"] is None and first["position"] is None
    seed = client.get(f"/result/{record.pk}").json()
    assert seed["task_status"] == "PROGRESS" and seed["task_result"] is None
    assert 0 < seed["progress"]["fraction"] < 1

    def moved_on():
        body = progress_seen()
        return body and body["progress"]["fraction"] > first["progress"]["fraction"]

    wait_for(moved_on, timeout=10)

    def done():
        body = client.get(f"/api/tasks/{record.pk}/").json()
        return body if body["status"] == "SUCCESS" else None

    final = wait_for(done, timeout=30)
    assert final["progress"] is None and final["result"]["input_x"] == "slow"
    assert set(client.get(f"/result/{record.pk}").json()) == {
        "task_id",
        "task_status",
        "task_result",
    }
    # The worker wrote one JSON line for the start and one for the finish of this task.
    lines = [
        json.loads(line) for line in solo_worker.log.read_text().splitlines() if "{" == line[:1]
    ]
    mine = {line["event"]: line for line in lines if line.get("task_id") == str(record.pk)}
    assert set(mine) == {"started", "finished"}
    assert mine["started"]["user"] == "alice" and mine["started"]["wait"] >= 0
    assert mine["finished"]["status"] == "SUCCESS"
    assert mine["finished"]["run"] == pytest.approx(2.5, abs=0.5)
