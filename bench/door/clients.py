"""The door benchmark's clients: wrk with bench/wrk/door.lua in the background, the open-loop
quiet user, and the two counts of tries before the first refusal.

Every client talks to 127.0.0.1 only. A wrk run is waited for with wait4(), so the CPU wrk itself
spent is known (on a 2-core machine it competes with the server it measures).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from bench.harness import ROOT, die_with_parent

LUA = ROOT / "bench" / "wrk" / "door.lua"

# wrk processes running now, stopped by stop_all() (the benchmark's `finally`, also on SIGTERM).
_running: set[subprocess.Popen] = set()


class WrkRun:
    """`wrk -s door.lua URL -- MODE ARGS…`, started now in its own process group, for `seconds`
    rounded up to whole seconds (wrk takes no fractions)."""

    def __init__(
        self,
        url: str,
        mode: str,
        args: list[str],
        *,
        connections: int,
        seconds: float,
        threads: int = 1,
    ):
        self.seconds = max(1, math.ceil(seconds))  # wrk takes whole seconds
        self.cmd = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}"]
        self.cmd += [
            f"-d{self.seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
            "--",
            mode,
            *args,
        ]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        _running.add(self.proc)

    def result(self) -> dict:
        """Wait for wrk; return requests/s, answers by status, latency, and wrk's own CPU."""
        timer = threading.Timer(self.seconds + 30, _kill, (self.proc,))
        timer.start()
        try:
            output = self.proc.stdout.read()
            _, status, usage = os.wait4(self.proc.pid, 0)
        finally:
            timer.cancel()
            _running.discard(self.proc)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.proc.stdout.close()
        line = next((x for x in output.splitlines() if x.startswith("WRKJSON ")), None)
        if self.proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({self.proc.returncode}): {output[-1500:]}")
        raw = json.loads(line[len("WRKJSON ") :])
        seconds = raw["duration_us"] / 1e6
        statuses = {int(k): v for k, v in raw["statuses"].items()}
        return {
            "requests": raw["requests"],
            "seconds": round(seconds, 2),
            "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
            "statuses": statuses,
            "ok": sum(v for k, v in statuses.items() if 200 <= k < 300),
            "refused": statuses.get(429, 0),
            "socket_errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
            "p50_ms": round(raw["p50_us"] / 1000, 2),
            "p90_ms": round(raw["p90_us"] / 1000, 2),
            "p99_ms": round(raw["p99_us"] / 1000, 2),
            "max_ms": round(raw["max_us"] / 1000, 2),
            "wrk_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        }


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def stop_all() -> None:
    """Kill every wrk still running (each in a process group of its own) and reap it."""
    for proc in list(_running):
        _kill(proc)
        with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
            proc.wait(timeout=5)
        _running.discard(proc)


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.hostname != "127.0.0.1":
        raise ValueError(f"the door benchmark only talks to 127.0.0.1, not {parts.hostname}")
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


def http_call(
    url: str, method: str, path: str, *, token: str | None = None, body: dict | None = None
) -> tuple[int, bytes]:
    """One request on a fresh connection; return the status and the body."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Token {token}"
    conn = _connection(url)
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def submit_one(url: str, token: str) -> str:
    """Submit one task as `token`'s user; return its id."""
    status, body = http_call(url, "POST", "/task", token=token, body={"x": {"prompt": "door"}})
    if status not in (200, 202):
        raise RuntimeError(f"POST /task answered {status}: {body[:300]!r}")
    return json.loads(body)["task_id"]


def open_loop(
    url: str, token: str, *, rate: float, seconds: float, threads: int = 4
) -> list[tuple[float, float, float, int]]:
    """Submit at a steady `rate` a second for `seconds`, whatever the answers take.

    `threads` threads, each with a keep-alive connection, send at fixed absolute times (thread k
    its i-th at start + (i·threads + k) / rate): a slow answer delays that thread's next request,
    never the schedule. Returns (due, sent, answered, status) per request, in seconds from the
    start; status 0 for a connection error. Latency counted from `due` includes any wait for
    the thread (no coordinated omission).
    """
    body = json.dumps({"x": {"prompt": "quiet"}})
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    start = time.monotonic() + 0.2
    rows: list[tuple[float, float, float, int]] = []
    lock = threading.Lock()

    def run(k: int) -> None:
        conn = None
        i = 0
        while True:
            due = (i * threads + k) / rate
            if due >= seconds:
                break
            delay = start + due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.monotonic() - start
            try:
                conn = conn or _connection(url)
                conn.request("POST", "/task", body, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                if conn is not None:
                    conn.close()
                conn = None
            answered = time.monotonic() - start
            with lock:
                rows.append((due, sent, answered, status))
            i += 1
        if conn is not None:
            conn.close()

    workers = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 60)
    return sorted(rows)


def tries_basic(url: str, username: str, *, cap: int, tag: str) -> dict:
    """GET /api/usage/ over basic with a different wrong password each time, until the first 429.

    Sequential, on one keep-alive connection. Returns the answers before the refusal, the
    request that was refused (1-based; None if none within `cap`) and the statuses seen.
    """
    conn = _connection(url)
    statuses: Counter = Counter()
    refused_at = None
    started = time.monotonic()
    try:
        for i in range(1, cap + 1):
            secret = base64.b64encode(f"{username}:try-{tag}-{i}".encode()).decode()
            conn.request("GET", "/api/usage/", headers={"Authorization": f"Basic {secret}"})
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
            if response.status == 429:
                refused_at = i
                break
    finally:
        conn.close()
    return _tries(statuses, refused_at, cap, time.monotonic() - started)


_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def tries_admin(url: str, username: str, *, cap: int, tag: str) -> dict:
    """GET /admin/login/ for the CSRF cookie and token, then POST wrong passwords until a 429."""
    conn = _connection(url)
    cookies: dict[str, str] = {}

    def keep_cookies(response) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            cookies.update({name: morsel.value for name, morsel in jar.items()})

    statuses: Counter = Counter()
    refused_at = None
    started = time.monotonic()
    try:
        conn.request("GET", "/admin/login/?next=/admin/", headers={"Accept": "text/html"})
        response = conn.getresponse()
        page = response.read().decode(errors="replace")
        keep_cookies(response)
        found = _CSRF_INPUT.search(page)
        if response.status != 200 or found is None or "csrftoken" not in cookies:
            raise RuntimeError(f"GET /admin/login/ gave no CSRF token ({response.status})")
        token = found.group(1)
        for i in range(1, cap + 1):
            form = {
                "csrfmiddlewaretoken": token,
                "username": username,
                "password": f"admin-try-{tag}-{i}",
                "next": "/admin/",
            }
            conn.request(
                "POST",
                "/admin/login/?next=/admin/",
                urlencode(form),
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "text/html",
                    "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
                },
            )
            response = conn.getresponse()
            page = response.read().decode(errors="replace")
            keep_cookies(response)
            statuses[response.status] += 1
            if response.status == 429:
                refused_at = i
                break
            if response.status == 403:
                raise RuntimeError(f"the admin's login refused the CSRF token: {page[:300]}")
            found = _CSRF_INPUT.search(page)
            token = found.group(1) if found else token
    finally:
        conn.close()
    return _tries(statuses, refused_at, cap, time.monotonic() - started)


def _tries(statuses: Counter, refused_at: int | None, cap: int, seconds: float) -> dict:
    return {
        "answered_before_refusal": (refused_at - 1) if refused_at else sum(statuses.values()),
        "refused_at": refused_at,
        "cap": cap,
        "statuses": dict(sorted(statuses.items())),
        "seconds": round(seconds, 2),
    }
