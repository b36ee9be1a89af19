"""prometheus-client's multiprocess mode, set up before any metric of pqh is made.

With several processes (the web server's workers, Celery's pool) every process writes its
counts to files in PROMETHEUS_MULTIPROC_DIR (no network I/O per event) and a scrape adds them
up. The value class must be chosen before the first metric exists, so every module that makes
metrics imports this one first.
"""

import os
import socket
import sys

from prometheus_client import values


def multiprocess_dir() -> str | None:
    """Return prometheus-client's multiprocess directory, or None in single-process mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


if multiprocess_dir():
    os.makedirs(multiprocess_dir(), exist_ok=True)
    # Each process writes its own files, named after its pid by default; containers that share
    # the directory (web and worker in docker-compose) each start counting pids at 1, so the
    # host name goes into the name too.
    _host = socket.gethostname().replace("_", "-")
    values.ValueClass = values.MultiProcessValue(lambda: f"{_host}-{os.getpid()}")


def warn_if_counts_split(*, processes: int, who: str) -> bool:
    """Say at start, in one line, that `who` runs `processes` processes with no directory to
    add their counts up: each scrape would then show one process's counts, silently. True if
    it warned."""
    if processes <= 1 or multiprocess_dir():
        return False
    print(
        f"Warning: {who} runs {processes} processes without PROMETHEUS_MULTIPROC_DIR: each "
        "/metrics scrape would show the counts of the one process that answers it. Set "
        "PROMETHEUS_MULTIPROC_DIR to a directory they share (make run and docker-compose do).",
        file=sys.__stderr__ or sys.stderr,
        flush=True,
    )
    return True
