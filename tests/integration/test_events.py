"""Every submission, refusal, start and finish: one structured line, and the counters follow."""

import logging

import pytest
from django.contrib.auth.models import User
from prometheus_client import REGISTRY

from fairqueue.admission import Admissions
from fairqueue.queue import FairQueue
from pqh_site.log_format import KeyValueFormatter
from tasks_app.models import TaskRecord
from tasks_app.ops import events, metrics


class Lines(logging.Handler):
    """Collects what the `pqh.events` logger writes, through its configured formatter."""

    def __init__(self, formatter: logging.Formatter):
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def event_lines():
    logger = logging.getLogger("pqh.events")
    # The handler settings.LOGGING gave it (pytest may add its own beside it).
    formatter = next(
        h.formatter for h in logger.handlers if isinstance(h.formatter, KeyValueFormatter)
    )
    lines = Lines(formatter)
    logger.addHandler(lines)
    yield lines
    logger.removeHandler(lines)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def fields(line: str) -> dict[str, str]:
    """Parse the key=value pairs of a plain event line (values without spaces)."""
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


@pytest.mark.django_db
def test_a_submission_writes_one_line_and_counts_its_level(alice_client, event_lines):
    before = sample("pqh_submissions_total", level="0")
    body = alice_client.post("/api/tasks/", {"x": 1}, format="json").json()
    assert sample("pqh_submissions_total", level="0") == before + 1
    (line,) = event_lines.lines
    got = fields(line)
    assert got["event"] == "submitted"
    assert got["task_id"] == body["task_id"]
    assert (got["user"], got["level"], got["replayed"]) == ("alice", "0", "false")
    assert (got["team"], got["team_weight"]) == ("", "")  # in no team


@pytest.mark.django_db
def test_a_team_members_submission_line_names_the_team(alice_client, event_lines):
    from users_app.services import team_add, team_create

    team_create(name="red", weight=3)
    team_add(name="red", usernames=["alice"])
    alice_client.post("/api/tasks/", {"x": 1}, format="json")
    (line,) = event_lines.lines
    assert (fields(line)["team"], fields(line)["team_weight"]) == ("red", "3")


def _missing_x(client, settings):
    return client.post("/task", {"y": 1}, format="json")


def _malformed(client, settings):
    return client.post("/task", b'{"x": ', content_type="application/json")


def _someone_else(client, settings):
    return client.post("/task", {"x": 1, "user_id": "bob"}, format="json")


def _too_big(client, settings):
    settings.PQH_MAX_INPUT_BYTES = 10
    return client.post("/task", {"x": "a" * 50}, format="json")


def _redis_down(client, settings):
    import redis

    def down(admissions, **kwargs):
        raise redis.ConnectionError("Connection refused")

    Admissions.admit, original = down, Admissions.admit
    try:
        return client.post("/task", {"x": 1}, format="json")
    finally:
        Admissions.admit = original


def _queue_down(client, settings):
    def down(*args, **kwargs):
        raise ConnectionError("redis went away")

    FairQueue.add, original = down, FairQueue.add
    try:
        return client.post("/task", {"x": 1}, format="json")
    finally:
        FairQueue.add = original


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attempt", "status", "reason"),
    [
        (_missing_x, 400, "invalid"),
        (_malformed, 400, "invalid"),
        (_someone_else, 403, "invalid"),
        (_too_big, 400, "invalid"),
        (_redis_down, 503, "unavailable"),
        (_queue_down, 503, "unavailable"),
    ],
)
def test_each_refusal_writes_one_line_and_counts_its_reason(
    attempt, status, reason, alice_client, bob, event_lines, settings
):
    before = {r: sample("pqh_refusals_total", reason=r) for r in metrics.REFUSAL_REASONS}
    submitted = sample("pqh_submissions_total", level="0")
    assert attempt(alice_client, settings).status_code == status
    after = {r: sample("pqh_refusals_total", reason=r) for r in metrics.REFUSAL_REASONS}
    assert {r: after[r] - before[r] for r in after} == {r: (1 if r == reason else 0) for r in after}
    assert sample("pqh_submissions_total", level="0") == submitted
    (record,) = event_lines.records
    assert record.getMessage() == "refused"
    assert (record.user, record.reason) == ("alice", reason)
    assert record.detail
    # Plain words in one line, not Python's repr of DRF's error objects.
    assert "ErrorDetail" not in record.detail and "{" not in record.detail
    assert "\n" not in event_lines.lines[0]
    assert TaskRecord.objects.count() == 0


@pytest.mark.django_db
def test_a_missing_x_is_logged_in_plain_words(alice_client, event_lines):
    assert alice_client.post("/task", {}, format="json").status_code == 400
    assert fields(event_lines.lines[0])["reason"] == "invalid"
    assert event_lines.lines[0].endswith('detail="x: This field is required."')


@pytest.mark.django_db
def test_a_4xx_writes_no_second_warning_line(alice_client, caplog):
    with caplog.at_level("INFO"):
        assert alice_client.post("/task", {}, format="json").status_code == 400
        assert alice_client.get("/api/tasks/nope/").status_code == 404
    assert [r for r in caplog.records if r.name == "django.request"] == []
    assert [r.getMessage() for r in caplog.records if r.name == "pqh.events"] == ["refused"]


def _record(**extra) -> TaskRecord:
    from datetime import UTC, datetime, timedelta

    submitted = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    record = TaskRecord(
        user=User(username="alice"),
        level=2,
        weight=3,
        count_before=7,
        input="x",
        submitted_at=submitted,
        started_at=submitted + timedelta(seconds=4.25),
        finished_at=submitted + timedelta(seconds=4.25 + 1.5),
        status="SUCCESS",
        worker="w1@host",
    )
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_start_and_finish_carry_wait_and_run_time_and_fill_the_histograms(event_lines):
    record = _record()
    waits = sample("pqh_task_wait_seconds_count", level="2")
    long_waits = sample("pqh_task_wait_seconds_bucket", level="2", le="2.0")
    runs = sample("pqh_task_run_seconds_sum", status="SUCCESS")
    events.event_started(record)
    events.event_finished(record)
    started, finished = (fields(line) for line in event_lines.lines)
    assert (started["event"], started["wait"], started["level"]) == ("started", "4.250", "2")
    assert (finished["event"], finished["status"]) == ("finished", "SUCCESS")
    assert (finished["wait"], finished["run"], finished["worker"]) == ("4.250", "1.500", "w1@host")
    assert sample("pqh_task_wait_seconds_count", level="2") == waits + 1
    # 4.25 s is above the 2 s bucket: that bucket did not move.
    assert sample("pqh_task_wait_seconds_bucket", level="2", le="2.0") == long_waits
    assert sample("pqh_task_run_seconds_sum", status="SUCCESS") == pytest.approx(runs + 1.5)
