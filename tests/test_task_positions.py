"""Queue positions for a page of tasks: the same numbers as one by one, in one query."""

import pytest

from tasks_app.selectors import task_position, task_positions
from tasks_app.services import task_cancel, task_submit

pytestmark = pytest.mark.django_db


def test_a_page_of_positions_matches_one_by_one_and_costs_one_query(
    alice, bob, django_assert_num_queries
):
    records = [task_submit(user=alice[0], x=i) for i in range(4)]
    records += [task_submit(user=bob[0], x=i) for i in range(3)]
    task_cancel(user=alice[0], task_id=records[1].pk)
    for record in records:
        record.refresh_from_db()
    expected = {record.pk: task_position(record) for record in records}
    assert sorted(p for p in expected.values() if p is not None) == [0, 1, 2, 3, 4, 5]
    with django_assert_num_queries(1):
        assert task_positions(records) == expected


def test_a_page_without_queued_tasks_costs_no_query(alice, django_assert_num_queries):
    record = task_submit(user=alice[0], x=1)
    task_cancel(user=alice[0], task_id=record.pk)
    record.refresh_from_db()
    with django_assert_num_queries(0):
        assert task_positions([record]) == {record.pk: None}
