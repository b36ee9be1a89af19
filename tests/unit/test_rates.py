"""A request rate is read as DRF writes it, N/period, as a token bucket of N refilled at N per period."""

import pytest

from fairqueue.rates import Rate, parse_rate

RATE = Rate(requests=3, seconds=1, text="3/s")  # a bucket of 3, one back every 1/3 s


@pytest.mark.parametrize(
    ("text", "requests", "seconds"),
    [
        ("20/s", 20, 1),
        ("120/m", 120, 60),
        ("5/min", 5, 60),
        ("1/day", 1, 86400),
        (" 7/H ", 7, 3600),
    ],
)
def test_rates_read_as_drf_writes_them(text, requests, seconds):
    rate = parse_rate(text)
    assert (rate.requests, rate.seconds) == (requests, seconds)
    assert rate.interval == seconds / requests


@pytest.mark.parametrize("text", ["off", "none", "OFF", None])
def test_off_means_no_limit(text):
    assert parse_rate(text) is None


@pytest.mark.parametrize("text", ["", "20", "0/s", "-1/s", "x/s", "20/w", "20/sx", "20/", "/s"])
def test_anything_else_is_refused_with_the_rule(text):
    with pytest.raises(ValueError, match="a rate is N/s, N/m, N/h or N/d"):
        parse_rate(text)
