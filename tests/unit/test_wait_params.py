"""What a request asks to wait for (tasks_app.waits.params): `?wait=S`, else `Prefer: wait=S`."""

import pytest

from tasks_app.waits.params import BadWait, requested_wait


@pytest.mark.parametrize(
    ("query", "prefer", "expected"),
    [
        (None, "", None),
        ("0", "", 0.0),
        ("2.5", "", 2.5),
        ("30", "", 30.0),
        (None, "wait=10", 10.0),
        (None, "respond-async, wait=7", 7.0),
        (None, "Wait = 3 ", 3.0),
        (None, 'wait="4"', 4.0),
        (None, "return=minimal", None),
        ("1", "wait=20", 1.0),  # the query wins
    ],
)
def test_the_wait_asked_for(query, prefer, expected):
    assert requested_wait(query, prefer, 30) == expected


@pytest.mark.parametrize("raw", ["-1", "30.5", "abc", "nan", "inf", "", "1e9"])
def test_a_wait_out_of_bounds_or_not_a_number_says_so(raw):
    with pytest.raises(BadWait) as caught:
        requested_wait(raw, "", 30)
    assert str(caught.value) == f"wait must be a number of seconds from 0 to 30, got {raw!r}"


def test_a_bad_preference_is_as_bad_as_a_bad_query():
    with pytest.raises(BadWait):
        requested_wait(None, "wait=soon", 30)
