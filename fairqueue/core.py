"""The core of one deployment: its config, its Redis client, and every part built on them."""

import redis

from .admission import Admissions
from .broker import Broker
from .config import Config
from .keys import Keys
from .queue import FairQueue
from .rates import Rates
from .scripts import Scripts
from .sweep import Sweeps
from .window import Windows


def redis_client(url: str, *, cluster: bool = False, **options) -> redis.Redis:
    """A client for `url` with the core's options (text replies, connections checked), or for
    the Redis Cluster that `url` is a node of."""
    options = {"decode_responses": True, "health_check_interval": 30, **options}
    if cluster:
        return redis.RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


class Core:
    """The fair queue, admissions, windows, sweeps, the broker's reads and the request rates,
    sharing one config, one client and one set of loaded scripts."""

    def __init__(
        self,
        config: Config,
        client: redis.Redis | None = None,
        broker_client: redis.Redis | None = None,
    ):
        self.config = config
        if client is None:
            client = redis_client(config.redis_url, cluster=config.cluster)
        self.redis = client
        if not config.broker_separate:
            broker_client = client
        elif broker_client is None:
            broker_client = redis_client(config.broker_url)
        self.keys = Keys(config)
        self.scripts = Scripts(self.redis)
        self.broker = Broker(broker_client, config)
        parts = (self.redis, config, self.keys, self.scripts)
        self.queue = FairQueue(*parts, broker=self.broker)
        self.admissions = Admissions(*parts, broker=self.broker)
        self.windows = Windows(*parts)
        self.sweeps = Sweeps(self.redis, config, self.keys)
        self.rates = Rates(self.keys, self.scripts)
