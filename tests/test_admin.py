"""The admin: weights edited one by one or many at once; the task history filtered and searched."""

import pytest
from django.contrib.auth import get_user_model

from tasks_app.services import task_submit
from users_app.models import Profile

pytestmark = pytest.mark.django_db


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
