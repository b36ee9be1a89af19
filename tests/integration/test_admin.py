"""The admin: weights edited one by one or many at once; the task history filtered and searched."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from celery import states
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_results.models import TaskResult

from pqh_site.celery import app as celery_app
from pqh_site.core import core
from tasks_app.admin import TaskRecordAdmin
from tasks_app.models import TaskRecord
from tasks_app.services.submission import task_submit
from users_app.models import Profile

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def staff_client(client):
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    return client


def test_weights_are_edited_many_at_once_in_the_list(staff_client, alice, bob):
    page = staff_client.get("/admin/users_app/profile/")
    assert page.status_code == 200
    profiles = list(Profile.objects.order_by("user__username"))
    data = {
        "form-TOTAL_FORMS": str(len(profiles)),
        "form-INITIAL_FORMS": str(len(profiles)),
        "_save": "Save",
    }
    for i, profile in enumerate(profiles):
        data[f"form-{i}-id"] = str(profile.pk)
        data[f"form-{i}-weight"] = {"alice": "2", "bob": "5"}.get(profile.user.username, "1")
    response = staff_client.post("/admin/users_app/profile/", data)
    assert response.status_code == 302
    assert Profile.objects.get(user=alice[0]).weight == 2
    assert Profile.objects.get(user=bob[0]).weight == 5


def test_a_weight_below_one_is_refused_in_the_admin(staff_client, alice):
    profile = Profile.objects.get(user=alice[0])
    response = staff_client.post(
        "/admin/users_app/profile/",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(profile.pk),
            "form-0-weight": "0",
            "_save": "Save",
        },
    )
    assert response.status_code == 200  # the form comes back with an error
    profile.refresh_from_db()
    assert profile.weight == 1


def test_the_user_page_shows_the_weight(staff_client, alice):
    page = staff_client.get(f"/admin/auth/user/{alice[0].pk}/change/")
    assert page.status_code == 200
    assert b'name="profile-0-weight"' in page.content


def test_history_filters_by_user_level_status_and_searches_by_id(staff_client, alice, bob):
    first = task_submit(user=alice[0], x=1)
    task_submit(user=alice[0], x=2)
    other = task_submit(user=bob[0], x=3)
    page = staff_client.get(f"/admin/tasks_app/taskrecord/?level=1&user__id__exact={alice[0].pk}")
    assert page.status_code == 200
    assert str(first.pk) not in page.content.decode()
    page = staff_client.get("/admin/tasks_app/taskrecord/?status__exact=PENDING")
    assert str(other.pk) in page.content.decode()
    page = staff_client.get(f"/admin/tasks_app/taskrecord/?q={str(other.pk)[:13]}")
    content = page.content.decode()
    assert str(other.pk) in content and str(first.pk) not in content
    detail = staff_client.get(f"/admin/tasks_app/taskrecord/{other.pk}/change/")
    assert detail.status_code == 200 and b"position" in detail.content.lower()


# --- weights: search, sorting, settings in one place, window reset ----------------------------


def test_the_weights_list_searches_by_name_and_sorts_by_weight(staff_client, alice, bob, charlie):
    found = staff_client.get("/admin/users_app/profile/?q=ali").content.decode()
    assert ">alice<" in found and ">bob<" not in found
    # Column 2 is the weight: descending puts charlie (6) before alice and bob (1).
    page = staff_client.get("/admin/users_app/profile/?o=-2").content.decode()
    assert page.index(">charlie<") < page.index(">alice<")
    page = staff_client.get("/admin/users_app/profile/?o=2").content.decode()
    assert page.index(">charlie<") > page.index(">alice<")


def test_a_users_settings_and_window_are_on_one_page(staff_client, alice):
    for i in range(2):
        task_submit(user=alice[0], x=i)
    page = staff_client.get(f"/admin/users_app/profile/{alice[0].profile.pk}/change/")
    content = page.content.decode()
    assert 'name="weight"' in content
    assert "2 submission(s) in the last" in content and "the next task gets level 1" in content
    assert "back at level 0 at " in content  # the first submission leaves the window then
    assert "/admin/tasks_app/taskrecord/?user=alice" in content


@pytest.mark.parametrize(
    ("path", "pk"),
    [("users_app/profile", "profile"), ("auth/user", "user")],
    ids=["weights", "users"],
)
def test_resetting_a_window_makes_the_next_submission_a_first_one(
    staff_client, alice, bob, path, pk
):
    for i in range(6):
        task_submit(user=alice[0], x=i)
    task_submit(user=bob[0], x=0)
    assert core().windows.count(user_id=alice[0].pk) == 6
    selected = alice[0].profile.pk if pk == "profile" else alice[0].pk
    response = staff_client.post(
        f"/admin/{path}/", {"action": "reset_window", "_selected_action": [selected]}, follow=True
    )
    assert "Reset the windows of 1 user(s), forgetting 6 submission(s): alice (6)" in (
        response.content.decode()
    )
    assert core().windows.count(user_id=alice[0].pk) == 0
    assert core().windows.count(user_id=bob[0].pk) == 1
    assert task_submit(user=alice[0], x="after").level == 0


# --- task history: waits and run times that sort, filters that combine, cancel ----------------


def _record(user, *, level=0, status=states.PENDING, submitted=0.0, started=None, finished=None):
    def at(seconds):
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    return TaskRecord.objects.create(
        user=user,
        level=level,
        weight=1,
        count_before=0,
        input=None,
        status=status,
        submitted_at=at(submitted),
        started_at=at(started),
        finished_at=at(finished),
    )


def _column(name: str) -> int:
    """The list's `?o=` index of a column: the checkbox of the actions comes first."""
    return 1 + TaskRecordAdmin.list_display.index(name)


def _ids_in_order(content: str, records) -> list:
    return sorted(records, key=lambda r: content.index(str(r.pk)))


def test_history_sorts_by_wait_and_by_run_time(staff_client, alice):
    short_wait = _record(alice[0], status=states.SUCCESS, started=1, finished=100)
    long_wait = _record(alice[0], status=states.SUCCESS, started=50, finished=51)
    mid_wait = _record(alice[0], status=states.SUCCESS, started=10, finished=30)
    records = [short_wait, long_wait, mid_wait]
    wait, run_time = _column("wait"), _column("run_time")
    content = staff_client.get(f"/admin/tasks_app/taskrecord/?o={wait}").content.decode()
    assert _ids_in_order(content, records) == [short_wait, mid_wait, long_wait]
    content = staff_client.get(f"/admin/tasks_app/taskrecord/?o=-{run_time}").content.decode()
    assert _ids_in_order(content, records) == [short_wait, mid_wait, long_wait]
    content = staff_client.get(f"/admin/tasks_app/taskrecord/?o={run_time}").content.decode()
    assert _ids_in_order(content, records) == [long_wait, mid_wait, short_wait]
    assert "1 min 39 s" in content and "50.0 s" in content  # run time of short_wait, wait of long


def test_history_reads_at_a_glance(staff_client, alice):
    ended = _record(alice[0], status=states.SUCCESS, submitted=5, started=7.5, finished=100)
    TaskRecord.objects.filter(pk=ended.pk).update(run_seconds=2.345, aged=True)
    running = TaskRecord.objects.create(
        user=alice[0],
        level=1,
        weight=1,
        count_before=3,
        status=states.STARTED,
        submitted_at=timezone.now() - timedelta(seconds=90),
        started_at=timezone.now() - timedelta(seconds=30),
    )
    content = staff_client.get("/admin/tasks_app/taskrecord/").content.decode()
    # A short id, the whole one on hover.
    full = str(ended.pk)
    assert f'title="{full}">{full[:8]}</span>' in content
    # Submitted to the second; the wait in seconds; one run-time column: the run seconds once
    # ended, the time so far while running.
    assert "2026-11-01 12:00:05" in content and "2.5 s" in content
    assert "2.3 s" in content and "1 min 32 s" not in content
    assert re.search(r'field-run_time">3\d\.\d s<', content), "a running task's time so far"
    for gone in ("column-run_seconds_text", "column-cost_text", "column-usage"):
        assert gone not in content
    # Aged: a word where it was, nothing where it was not; never Django's red cross.
    assert content.count('class="aged-mark"') == 1
    assert "icon-no.svg" not in content and "icon-yes.svg" not in content
    # No deleting from the history: no action, no delete page.
    assert "delete_selected" not in content
    assert staff_client.get(f"/admin/tasks_app/taskrecord/{running.pk}/delete/").status_code == 403


def test_a_tasks_page_is_read_only_to_the_second_and_summarises_its_stored_result(
    staff_client, alice
):
    record = _record(alice[0], status=states.SUCCESS, submitted=5, started=7.5, finished=10.25)
    celery_app.backend.store_result(str(record.pk), {"answer": "only-in-the-result"}, "SUCCESS")
    page = staff_client.get(f"/admin/tasks_app/taskrecord/{record.pk}/change/")
    content = page.content.decode()
    assert page.status_code == 200
    assert str(record.pk) in content
    assert "2026-11-01 12:00:05" in content and "2026-11-01 12:00:10" in content
    assert "why this level" in content.lower() and "level 0" in content
    assert "SUCCESS, stored " in content and "an object of 1 key" in content
    assert "only-in-the-result" not in content  # the shape of the value, never the value
    assert "deletelink" not in content and f"{record.pk}/delete/" not in content
    assert 'name="_save"' not in content  # nothing to save either


def test_a_failed_tasks_page_names_the_error_in_one_line(staff_client, alice):
    record = _record(alice[0], status=states.FAILURE, started=1, finished=2)
    celery_app.backend.store_result(
        str(record.pk), ValueError("the input was odd\nsecond line"), states.FAILURE, traceback="Tb"
    )
    content = staff_client.get(f"/admin/tasks_app/taskrecord/{record.pk}/change/").content.decode()
    assert "FAILURE, stored " in content and "ValueError: the input was odd…" in content
    assert "second line" not in content


def test_the_index_lists_pqhs_history_and_not_celerys_results(staff_client):
    content = staff_client.get("/admin/").content.decode()
    assert "Task history" in content
    assert "Task results" not in content and "Group results" not in content
    assert staff_client.get("/admin/django_celery_results/taskresult/").status_code == 404


def test_what_is_queued_at_level_5_for_alice(staff_client, alice, bob):
    wanted = _record(alice[0], level=5)
    others = [
        _record(alice[0], level=5, status=states.SUCCESS, started=1, finished=2),
        _record(alice[0], level=1),
        _record(bob[0], level=5),
    ]
    for query in ("user=alice", "q=alice", "q=ALICE"):
        page = staff_client.get(
            f"/admin/tasks_app/taskrecord/?status__exact=PENDING&level=5&{query}"
        ).content.decode()
        assert str(wanted.pk) in page, query
        assert not any(str(r.pk) in page for r in others), query
    # The user filter offers the users with tasks queued or running.
    page = staff_client.get("/admin/tasks_app/taskrecord/").content.decode()
    assert "?user=alice" in page and "?user=bob" in page


def test_cancel_selected_goes_through_the_service_and_skips_started_tasks(staff_client, alice, bob):
    queued = [task_submit(user=alice[0], x=i) for i in range(2)] + [task_submit(user=bob[0], x=0)]
    started = _record(alice[0], status=states.STARTED, started=1)
    waiting_before = core().queue.waiting_count()
    response = staff_client.post(
        "/admin/tasks_app/taskrecord/",
        {"action": "cancel_selected", "_selected_action": [r.pk for r in [*queued, started]]},
        follow=True,
    )
    assert (
        "Cancelled 3 queued task(s); 1 had already started or ended." in response.content.decode()
    )
    assert set(
        TaskRecord.objects.filter(pk__in=[r.pk for r in queued]).values_list("status", flat=True)
    ) == {states.REVOKED}
    assert TaskRecord.objects.get(pk=started.pk).status == states.STARTED
    # As the API's cancel: out of the fair queue, and REVOKED in the result store.
    assert core().queue.waiting_count() < waiting_before
    assert TaskResult.objects.get(task_id=str(queued[0].pk)).status == states.REVOKED


def test_cancelling_needs_the_change_permission(client, alice):
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_taskrecord"))
    client.login(username="viewer", password="pw")
    record = task_submit(user=alice[0], x=1)
    page = client.get("/admin/tasks_app/taskrecord/")
    assert page.status_code == 200 and b"cancel_selected" not in page.content
    client.post(
        "/admin/tasks_app/taskrecord/",
        {"action": "cancel_selected", "_selected_action": [record.pk]},
    )
    assert TaskRecord.objects.get(pk=record.pk).status == states.PENDING


# --- no list runs a query per row --------------------------------------------------------------


def _many_users(n: int) -> list:
    users = [get_user_model().objects.create(username=f"user{i:03d}") for i in range(n)]
    return users


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/tasks_app/taskrecord/",
        f"/admin/tasks_app/taskrecord/?status__exact=PENDING&o=-{_column('wait')}",
        "/admin/tasks_app/taskrecord/?_facets=True&level=1",
        "/admin/users_app/profile/",
        "/admin/auth/user/",
    ],
)
def test_a_list_page_costs_the_same_queries_for_3_rows_as_for_50(
    staff_client, url, django_assert_max_num_queries
):
    users = _many_users(50)
    for i, user in enumerate(users[:3]):
        _record(user, level=i % 6, submitted=i)
    few = _queries(staff_client, url)
    for i, user in enumerate(users[3:]):
        _record(user, level=i % 6, submitted=10 + i)
        _record(
            user, level=i % 6, status=states.SUCCESS, submitted=i, started=i + 1, finished=i + 2
        )
    many = _queries(staff_client, url)
    assert many == few, f"{url}: {few} queries for 3 rows, {many} for 50"
    with django_assert_max_num_queries(20):  # counts shown (_facets) add one query per filter
        assert staff_client.get(url).status_code == 200
