"""/metrics: who may read it, what it shows, and that it adds up several processes."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from fairqueue.testing import free_port
from tasks_app.models import TaskRecord
from tasks_app.ops.metrics import OTHERS
from tests.conftest import make_user, wait_for
from tests.servers import samples, value


def users_of(text: str, metric: str) -> dict[str, float]:
    """The `user` series of one gauge: {user label: value}."""
    return {
        dict(labels)["user"]: v for (name, labels), v in samples(text).items() if name == metric
    }


@pytest.fixture
def staff(db):
    user, token = make_user("operator")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user, token


def basic(username: str) -> APIClient:
    client = APIClient()
    secret = base64.b64encode(f"{username}:pw-{username}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {secret}")
    return client


@pytest.mark.django_db
def test_only_staff_and_the_scraper_token_may_read_metrics(alice, staff, settings):
    settings.PQH_METRICS_TOKEN = "s3cret-scrape"
    anonymous = APIClient().get("/metrics")
    assert anonymous.status_code == 401 and "detail" in anonymous.json()
    assert basic("alice").get("/metrics").status_code == 403
    assert basic("operator").get("/metrics").status_code == 200
    scraper = APIClient()
    scraper.credentials(HTTP_AUTHORIZATION="Bearer s3cret-scrape")
    response = scraper.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    # OpenMetrics for a scraper that asks for it.
    openmetrics = scraper.get("/metrics", HTTP_ACCEPT="application/openmetrics-text")
    assert openmetrics["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.content.decode().rstrip().endswith("# EOF")
    scraper.credentials(HTTP_AUTHORIZATION="Bearer wrong")
    assert scraper.get("/metrics").status_code == 401


@pytest.mark.django_db
def test_without_a_token_setting_no_bearer_gets_in(settings):
    settings.PQH_METRICS_TOKEN = ""
    scraper = APIClient()
    scraper.credentials(HTTP_AUTHORIZATION="Bearer ")
    assert scraper.get("/metrics").status_code == 401


@pytest.mark.django_db
def test_queue_depth_by_level_is_read_at_scrape_time(alice_client, staff):
    for i in range(3):
        alice_client.post("/task", {"x": i}, format="json")  # levels 0, 1, 1
    text = basic("operator").get("/metrics").content.decode()
    assert value(text, "pqh_queued_tasks", level="0") == 1
    assert value(text, "pqh_queued_tasks", level="1") == 2
    assert value(text, "pqh_queued_tasks", level="5") == 0
    # The first was released at once to the broker; the other two wait in the fair queue.
    assert value(text, "pqh_broker_tasks", level="0") == 1
    assert value(text, "pqh_fair_queue_tasks") == 2
    assert value(text, "pqh_running_tasks", level="0") == 0
    assert value(text, "pqh_source_up", source="postgres") == 1
    assert value(text, "pqh_source_up", source="redis") == 1
    assert value(text, "pqh_submissions_total", level="1") >= 2
    assert value(text, "pqh_refusals_total", reason="user_cap") is not None


@pytest.mark.django_db
def test_a_scrape_while_redis_is_down_says_so_and_still_answers(staff, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = basic("operator").get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert value(text, "pqh_source_up", source="redis") == 0
    assert value(text, "pqh_source_up", source="postgres") == 1
    assert value(text, "pqh_broker_tasks", level="0") is None


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_each_contending_users_share_is_scraped_from_what_the_worker_did(staff, celery_worker):
    # Two users contend for the one worker slot; nobody injects a row: /metrics reads the
    # shares the service computes from the history, checked against the runs themselves.
    alice, alice_token = make_user("alice")
    bob, bob_token = make_user("bob", weight=3)
    for token in (alice_token, bob_token):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        for _ in range(3):
            assert client.post("/task", {"x": 1}, format="json").status_code == 202
    wait_for(lambda: TaskRecord.objects.filter(status="SUCCESS").count() == 6, timeout=60)
    text = basic("operator").get("/metrics").content.decode()
    ran = {
        user.username: sum(
            (r.finished_at - r.started_at).total_seconds()
            for r in TaskRecord.objects.filter(user=user)
        )
        for user in (alice, bob)
    }
    total = sum(ran.values())
    for user, weight in (("alice", 1), ("bob", 3)):
        assert value(text, "pqh_user_share", user=user) == pytest.approx(
            ran[user] / total, abs=1e-3
        )
        assert value(text, "pqh_user_weight", user=user) == weight
    # What each was entitled to is checked against the runs in test_shares_on_a_worker.py;
    # here, that the entitlements divide the same worker time.
    entitled = [value(text, "pqh_user_entitled_share", user=u) for u in ("alice", "bob")]
    assert sum(entitled) == pytest.approx(1.0, abs=1e-6)
    assert value(text, "pqh_users_with_tasks") == 2
    assert value(text, "pqh_user_share", user="operator") is None  # had no task
    assert value(text, "pqh_user_share", user=OTHERS) is None  # two users: no aggregate


def _hour_of_work(users: int):
    """`users` users with a task each in the last hour, user i running 10 + i seconds (weights
    1, 2, 3, 1, …), a minute apart: nobody shares a level."""
    now = timezone.now()
    made = []
    for i in range(users):
        user, _ = make_user(f"user{i:02d}", weight=1 + i % 3)
        start = now - timedelta(minutes=50 - i)
        TaskRecord.objects.create(
            user=user,
            level=0,
            weight=1 + i % 3,
            count_before=0,
            status="SUCCESS",
            submitted_at=start,
            started_at=start,
            finished_at=start + timedelta(seconds=10 + i),
        )
        made.append((user.username, 1 + i % 3, 10.0 + i))
    return made


@pytest.mark.django_db
def test_per_user_series_are_bounded_and_the_rest_add_up_in_one(staff, settings):
    settings.PQH_METRICS_TOP_USERS = 3
    made = _hour_of_work(7)
    text = basic("operator").get("/metrics").content.decode()
    series = users_of(text, "pqh_user_share")
    # The three largest (user06, user05, user04: 16, 15, 14 s), and one series for the rest.
    assert set(series) == {"user06", "user05", "user04", OTHERS}
    total = sum(seconds for *_, seconds in made)
    assert series["user06"] == pytest.approx(16 / total)
    rest = [(name, weight, seconds) for name, weight, seconds in made if name not in series]
    assert series[OTHERS] == pytest.approx(sum(s for *_, s in rest) / total)
    assert value(text, "pqh_user_weight", user=OTHERS) == sum(w for _, w, _ in rest)
    # The totals still add up, and the count says how many users the series stand for.
    assert sum(series.values()) == pytest.approx(1.0)
    entitled = users_of(text, "pqh_user_entitled_share")
    assert set(entitled) == set(series) and sum(entitled.values()) == pytest.approx(1.0)
    assert len(users_of(text, "pqh_user_weight")) == 4
    assert value(text, "pqh_users_with_tasks") == 7
    assert value(text, "pqh_share_jain_index") is None  # nobody shared a level

    settings.PQH_METRICS_TOP_USERS = 0
    text = basic("operator").get("/metrics").content.decode()
    assert users_of(text, "pqh_user_share") == {OTHERS: pytest.approx(1.0)}
