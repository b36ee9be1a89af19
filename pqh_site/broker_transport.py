"""kombu's Redis transport, with one repair: a worker survives losing Redis while a task runs.

Celery 5.7 handles a lost broker connection by collecting the connection (which closes its
channels and detaches the transport from it) and then closing it once more. When a channel
could not close the first time (it was waiting in BRPOP for a free slot, and the dead socket
raised) and holds an unacknowledged message (a task running under acks_late), the second
close tries to give that message back through a new Redis pool, which the detached transport
can no longer build: kombu raises AttributeError, which nobody catches, and the whole worker
shuts down ("Unrecoverable error: AttributeError("'NoneType' object has no attribute
'hostname'")"), leaving every queued task waiting.

Here that case raises redis's ConnectionError instead, one of the transport's connection
errors, which the close already ignores: the worker reconnects as it does after any loss. The
message is not lost: Redis restores it after the visibility timeout, or (if Redis lost its
data) the recovery sweeps queue the task again. tests/system/test_redis_restart.py shows the crash;
drop this module when Celery no longer closes a collected connection.

`install()` (called by pqh_site/celery.py, before any connection) points kombu's `redis` and
`rediss` schemes at this transport, so a broker URL keeps meaning what it says (`rediss://`
keeps kombu's TLS defaults, which depend on the scheme's name).
"""

from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis
from redis import exceptions as redis_exceptions

PATH = f"{__name__}:Transport"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise redis_exceptions.ConnectionError(
                "the broker connection was closed after a connection loss"
            )
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


def install() -> None:
    """Make the `redis://` and `rediss://` broker URLs use this transport."""
    for scheme in ("redis", "rediss"):
        kombu_transport.TRANSPORT_ALIASES[scheme] = PATH
