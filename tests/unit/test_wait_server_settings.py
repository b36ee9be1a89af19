"""The wait server runs only middleware that needs no thread: a sync one would hold a thread
for the whole of every wait."""

import subprocess
import sys

from tests.conftest import ROOT, subprocess_env

PROBE = """
import django
from django.conf import settings
from django.utils.module_loading import import_string
django.setup()
print(settings.ROOT_URLCONF)
for path in settings.MIDDLEWARE:
    cls = import_string(path)
    print(path, getattr(cls, "async_capable", False))
"""


def test_the_wait_servers_middleware_all_run_without_a_thread():
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=subprocess_env(PQH_SERVER="waits"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "pqh_site.urls_waits"
    assert len(out) > 3 and all(line.endswith(" True") for line in out[1:]), out
