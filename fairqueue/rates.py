"""Request rates: "N/period", as DRF writes them, read as token buckets, counted in Redis.

"N/period" (period s, m, h or d, or a word starting with one: sec, min, hour, day) is a bucket
of N requests that refills at N per period: N may come at once, then one every period / N.
"off" (or "none") means no limit. parse_rate is pure; Rates.take counts in Redis.
"""

import json
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


class Rates:
    """The request-rate buckets of one deployment (lua/rate.lua): one round trip a request."""

    def __init__(self, keys, scripts):
        self.keys, self.scripts = keys, scripts

    def take(self, *, scope: str, ident: object, rate: Rate, now: float | None = None) -> float:
        """Count one request of `ident` in its `scope` bucket; return 0.0, or the seconds to wait.

        A refused request is not counted, so a client that keeps knocking is let in as soon as
        the bucket has room again. `now` None: judged at the Redis server's clock, when the
        request reaches the bucket (what the service does); a number: at that instant (tests).
        """
        args = {"interval": rate.interval, "burst": rate.requests}
        if now is not None:
            args["now"] = now
        keys = [self.keys.rate(scope, ident)]
        allowed, wait = self.scripts["rate"](keys=keys, args=[json.dumps(args)])
        return 0.0 if int(allowed) else max(float(wait), 0.0)
