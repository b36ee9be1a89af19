"""Progress reports: a plain function, stored at most once per interval, never stopping the work."""

from tasks_app.worker.progress import ProgressReporter, accepts_progress, call_with_progress
from tasks_app.worker.work import limited_f


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
