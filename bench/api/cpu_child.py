"""One server's request path, timed in CPU: N requests through its WSGI application, in turn.

    python bench/api/cpu_child.py ROUTE N TARGETS    (run by bench/api/cpu.py, cwd the tree)

Run as a script in the tree measured (its settings from DJANGO_SETTINGS_MODULE and the
environment), so it imports nothing of bench/: the tree may be another checkout. ROUTE is
`post_task` or `get_result`; TARGETS has one `token task-id` a line. After a warm-up of 200
requests, it sends N requests one after the other to the application the server runs
(settings.WSGI_APPLICATION) and prints one JSON line: this process's CPU seconds (Python,
Django, the drivers) and those of its PostgreSQL backend (from /proc), and the statuses.
"""

import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())


def backend_cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    route, count, targets_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    import django

    django.setup()
    from django.core.servers.basehttp import get_internal_wsgi_application
    from django.db import connection

    app = get_internal_wsgi_application()
    targets = [line.split() for line in Path(targets_file).read_text().splitlines() if line]
    body = b'{"x": {"prompt": "bench"}}'
    statuses: dict[str, int] = {}

    def one(i: int) -> None:
        token, task_id = targets[i % len(targets)]
        environ = {
            "REQUEST_METHOD": "POST" if route == "post_task" else "GET",
            "PATH_INFO": "/task" if route == "post_task" else f"/result/{task_id}",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {token}",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body if route == "post_task" else b""),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if route == "post_task":
            environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))

        def start_response(status, headers, exc_info=None):
            statuses[status[:3]] = statuses.get(status[:3], 0) + 1

        response = app(environ, start_response)
        for _ in response:
            pass
        if hasattr(response, "close"):
            response.close()

    for i in range(200):  # warm: imports, the connection, remembered credentials, prepares
        one(i)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    statuses.clear()
    cpu, pg, wall = time.process_time(), backend_cpu(pid), time.monotonic()
    for i in range(count):
        one(i)
    cpu, pg = time.process_time() - cpu, backend_cpu(pid) - pg
    print(
        json.dumps(
            {
                "requests": count,
                "process_cpu_s": round(cpu, 3),
                "postgres_cpu_s": round(pg, 3),
                "wall_s": round(time.monotonic() - wall, 3),
                "statuses": statuses,
            }
        )
    )


if __name__ == "__main__":
    main()
