"""A stop that lands while the web server's processes are still starting still stops it.

On a stop, honcho relays SIGTERM to granian's main process, which passes it to its workers and
waits for them; a worker forked a moment before still runs the main process's handler (it only
sets a flag) while it loads Django, misses the signal, and was waited on forever, and honcho
with it, holding `make run` or a container's stop. The Procfile's
`--workers-kill-timeout ${PQH_WEB_KILL_TIMEOUT:-5}` bounds that wait."""

import pytest

from tests.conftest import subprocess_env, wait_for
from tests.servers import WebServer


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_a_stop_while_the_workers_load_django_stops_it(tmp_path, attempt):
    log = tmp_path / "web.log"
    server = WebServer(workers=2, env=subprocess_env(PQH_WEB_KILL_TIMEOUT="2"), log=log)
    server.start()
    wait_for(lambda: "Spawning worker-2" in log.read_text(), timeout=30, interval=0.01)
    # Raises (and kills the group) if honcho is still waiting 30 s later.
    assert server.stop() != 0, log.read_text()[-2000:]
    assert "Shutting down granian" in log.read_text()
