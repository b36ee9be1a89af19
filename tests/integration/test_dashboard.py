"""The fairness dashboard: staff only, linked from the admin index, bounded queries, SVG chart."""

import re
from datetime import timedelta

import pytest
from celery import states
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks_app.models import TaskRecord
from tasks_app.selectors import reports
from tasks_app.services.submission import task_submit
from tests.queue_state import record_submission

URL = "/admin/fairness/"


@pytest.fixture
def root_client(client, db):
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    return client


@pytest.mark.django_db
def test_only_staff_with_the_view_permission_see_it(client):
    User = get_user_model()
    assert client.get(URL)["Location"].startswith("/admin/login/")
    User.objects.create_user("plain", password="pw")
    client.login(username="plain", password="pw")
    assert client.get(URL)["Location"].startswith("/admin/login/")
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    client.login(username="staff", password="pw")
    assert client.get(URL).status_code == 403
    assert b"Fairness dashboard" not in client.get("/admin/").content
    staff.user_permissions.add(Permission.objects.get(codename="view_taskrecord"))
    assert client.get(URL).status_code == 200


@pytest.mark.django_db
def test_the_admin_index_links_to_it(root_client):
    index = root_client.get("/admin/").content.decode()
    assert f'href="{URL}"' in index and "Fairness dashboard" in index


@pytest.mark.django_db
def test_it_counts_queued_and_running_tasks_per_level(root_client, alice, bob):
    for i in range(3):
        task_submit(user=alice[0], x=i)  # levels 0, 1, 1
    running = task_submit(user=bob[0], x=0)  # level 0
    TaskRecord.objects.filter(pk=running.pk).update(
        status=states.STARTED, started_at=timezone.now()
    )
    page = root_client.get(URL).content.decode()
    rows = {
        level: (int(queued), int(running))
        for level, queued, running in re.findall(
            r'data-level="(\d)">.*?class="num queued">(\d+)</td>\s*<td class="num running">(\d+)',
            page,
            re.S,
        )
    }
    assert rows["0"] == (1, 1) and rows["1"] == (2, 0) and rows["5"] == (0, 0)
    assert 'id="total-queued">3<' in page and 'id="total-running">1<' in page
    # Alice has the largest window: she heads the table, with her weight and next level.
    windows = page[page.index('id="windows"') : page.index('id="waits"')]
    assert windows.index(">alice<") < windows.index(">bob<")


@pytest.mark.django_db
def test_shares_beside_entitlements_are_shown_and_time_alone_is_no_ones_shortfall(
    root_client, alice, charlie, settings
):
    settings.PQH_MAX_WAIT_SECONDS = 600
    now = timezone.now()

    def task(user, submitted, started=None, finished=None):
        TaskRecord.objects.create(
            user=user,
            level=0,
            weight=user.profile.weight,
            count_before=0,
            status=states.SUCCESS if finished else states.PENDING,
            submitted_at=now - timedelta(seconds=submitted),
            started_at=started and now - timedelta(seconds=started),
            finished_at=finished and now - timedelta(seconds=finished),
        )

    for user in (alice[0], charlie[0]):
        record_submission(user_id=user.pk, member=f"{user.pk}", now=now.timestamp())
    # Alice (weight 1) runs alone for 60 s; then Charlie (weight 6) shares level 0 with her:
    # 60 s for him, 10 s for her, and both still have a task waiting.
    task(alice[0], 300, 300, 240)
    task(alice[0], 300, 180, 170)
    task(alice[0], 300)
    task(charlie[0], 240, 240, 180)
    task(charlie[0], 240)
    page = root_client.get(URL).content.decode()
    windows = page[page.index('id="windows"') : page.index('id="waits"')]
    # Alice: 70 of 130 s received, 70 entitled (60 alone, 10 = 1/7 of the 70 s shared).
    # Counting weights over the hour would say 1/7 = 0.143 entitled.
    assert re.search(r">alice<.*?>0\.538<.*?>0\.538<.*?>1\.00×<", windows, re.S)
    assert re.search(r">charlie<.*?>0\.462<.*?>0\.462<.*?>1\.00×<", windows, re.S)
    assert (
        "2 user(s) had tasks in the last 60 minutes, receiving 2 min 10 s of worker time, "
        "1 min 10 s of it while two or more users shared a level." in windows
    )
    assert "Jain's index over received ÷ due while contending: 1.000" in windows
    assert "a user is entitled to its weight's part of the worker time its level receives" in (
        windows
    )


@pytest.mark.django_db
def test_a_period_too_busy_for_shares_says_so(root_client, alice, monkeypatch):
    monkeypatch.setattr(reports, "REPORT_MAX_TASKS", 0)
    task_submit(user=alice[0], x=1)
    page = root_client.get(URL).content.decode()
    assert re.search(r'id="too-busy">No shares: more than 0 tasks were alive from', page)
    assert "Jain's index: no contention in the period." in page


@pytest.mark.django_db
def test_it_costs_the_same_queries_for_2_users_as_for_40(root_client):
    User = get_user_model()
    now = timezone.now()

    def add_users(start: int, stop: int) -> None:
        for i in range(start, stop):
            user = User.objects.create(username=f"user{i:02d}")
            record_submission(user_id=user.pk, member=f"m{i}", now=now.timestamp())
            TaskRecord.objects.create(
                user=user,
                level=i % 6,
                weight=1,
                count_before=0,
                status=states.SUCCESS,
                submitted_at=now - timedelta(seconds=60),
                started_at=now - timedelta(seconds=50 - i),
                finished_at=now - timedelta(seconds=5),
            )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert root_client.get(URL).status_code == 200
        return len(captured)

    add_users(0, 2)
    few = queries()
    add_users(2, 40)
    assert queries() == few
    assert few <= 12, few
