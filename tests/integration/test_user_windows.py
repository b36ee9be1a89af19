"""The operators' window rows (users_app.selectors.user_windows) for any number of users."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks_app.services.submission import task_submit
from tests.conftest import make_user
from users_app import selectors

pytestmark = pytest.mark.django_db


def test_the_users_are_read_in_slices_of_ids(no_worker, monkeypatch):
    """PostgreSQL binds at most 65,535 parameters in a prepared statement: the users of live
    windows are read IN_SLICE ids at a time, and every one of them is shown."""
    users = [make_user(f"w{i}")[0] for i in range(5)]
    for i, user in enumerate(users):
        for _ in range(i + 1):
            task_submit(user=user, x=1)
    monkeypatch.setattr(selectors, "IN_SLICE", 2)
    with CaptureQueriesContext(connection) as queries:
        rows = selectors.user_windows()
    assert [(row.username, row.count) for row in rows] == [
        (f"w{i}", i + 1) for i in (4, 3, 2, 1, 0)
    ]
    assert len([q for q in queries if "auth_user" in q["sql"]]) == 3
