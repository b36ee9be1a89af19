"""The Celery app imports none of the apps, so nothing imports its way back into it."""

import ast
import subprocess
import sys

from .conftest import ROOT, subprocess_env

PROBE = """
import sys
import pqh_site.celery
loaded = sorted(m for m in sys.modules if m.startswith(("tasks_app", "users_app")))
print("loaded:", loaded)
import django
django.setup()
from pqh_site.celery import app
from tasks_app.worker_steps import ReleaseTicker
print("ticker:", ReleaseTicker in app.steps["worker"])
"""


def test_the_celery_app_imports_no_app_module_and_the_worker_still_gets_its_ticker():
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "loaded: []" in out
    assert "ticker: True" in out


def _local_imports(path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found.append(f"{path.name}:{inner.lineno}")
    return found


def test_no_import_is_hidden_inside_a_function_on_the_old_cycle():
    # pqh_site/celery.py -> tasks_app/worker_steps.py -> tasks_app/services.py -> celery.py was a
    # cycle kept working by imports inside functions; none of the three may hide one again.
    files = ["pqh_site/celery.py", "tasks_app/worker_steps.py", "tasks_app/services.py"]
    assert [hit for name in files for hit in _local_imports(ROOT / name)] == []
