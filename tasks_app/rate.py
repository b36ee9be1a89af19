"""Request rates at the door: a token bucket per client and scope, counted in Redis.

A rate (fairqueue.rates) is a bucket of N requests refilled at N per period; lua/rate.lua
takes one request from a bucket in one atomic round trip.
"""

import json
import time

from fairqueue.rates import Rate

from .redis_client import get_script, key


def rate_key(scope: str, ident: object) -> str:
    return key("rate", scope, ident)


def rate_take(*, scope: str, ident: object, rate: Rate, now: float | None = None) -> float:
    """Count one request of `ident` in its `scope` bucket; return 0.0, or the seconds to wait.

    A refused request is not counted, so a client that keeps knocking is let in as soon as
    the bucket has room again.
    """
    now = time.time() if now is None else now
    args = {"now": now, "interval": rate.interval, "burst": rate.requests}
    allowed, wait = get_script("rate")(keys=[rate_key(scope, ident)], args=[json.dumps(args)])
    return 0.0 if int(allowed) else max(float(wait), 0.0)
