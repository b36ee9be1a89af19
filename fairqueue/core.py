"""The core of one deployment: its config, its Redis client, and every part built on them."""

import redis

from .admission import Admissions
from .broker import Broker
from .config import Config
from .keys import Keys
from .queue import FairQueue
from .rates import Rates
from .scripts import Batch, Scripts
from .sweep import Sweeps
from .window import Windows


def redis_client(url: str) -> redis.Redis:
    """A client for `url` with the core's options (text replies, connections checked)."""
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


class Core:
    """The fair queue, admissions, windows, sweeps, the broker's reads and the request rates,
    sharing one config, one client and one set of loaded scripts."""

    def __init__(self, config: Config, client: redis.Redis | None = None):
        self.config = config
        self.redis = client if client is not None else redis_client(config.redis_url)
        self.keys = Keys(config)
        self.scripts = Scripts(self.redis)
        parts = (self.redis, config, self.keys, self.scripts)
        self.queue = FairQueue(*parts)
        self.admissions = Admissions(*parts)
        self.windows = Windows(*parts)
        self.sweeps = Sweeps(self.redis, config, self.keys)
        self.broker = Broker(self.redis, config)
        self.rates = Rates(self.keys, self.scripts)

    def batch(self) -> Batch:
        """A batch of script calls and commands sent in one round trip (fairqueue.scripts)."""
        return Batch(self.redis, self.scripts)
