"""Request rates: "N/period", as DRF writes them, read as token buckets. Pure: no I/O.

"N/period" (period s, m, h or d, or a word starting with one: sec, min, hour, day) is a bucket
of N requests that refills at N per period: N may come at once, then one every period / N.
"off" (or "none") means no limit.
"""

from dataclasses import dataclass

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# DRF reads the first letter of the period; these are the words it documents.
_LONG_NAMES = {"s": ("sec", "second"), "m": ("min", "minute"), "h": ("hour",), "d": ("day",)}
UNLIMITED = ("off", "none")


@dataclass(frozen=True)
class Rate:
    """N requests per `seconds`, as a bucket of N refilled at that rate."""

    requests: int
    seconds: int
    text: str

    @property
    def interval(self) -> float:
        """Seconds per request at the sustained rate."""
        return self.seconds / self.requests


def parse_rate(text: str | None) -> Rate | None:
    """Parse "N/period" (20/s, 120/m, 1000/h, 1/d); None for "off"/"none"; ValueError otherwise."""
    if text is None:
        return None
    value = text.strip().lower()
    if value in UNLIMITED:
        return None
    count, sep, period = value.partition("/")
    rule = f"a rate is N/s, N/m, N/h or N/d with N at least 1 (or off), got {text!r}"
    if not sep or not count.isdigit() or int(count) < 1 or not period:
        raise ValueError(rule)
    seconds = _PERIODS.get(period[0])
    if seconds is None or period not in (period[0], *_LONG_NAMES[period[0]]):
        raise ValueError(rule)
    return Rate(requests=int(count), seconds=seconds, text=f"{int(count)}/{period[0]}")
