"""The import graph: the Celery app imports no app module, the core no Django, bench/ no tests."""

import ast
import os
import subprocess
import sys

from tests.conftest import ROOT, subprocess_env

PROBE = """
import sys
import pqh_site.celery
loaded = sorted(m for m in sys.modules if m.startswith(("tasks_app", "users_app")))
print("loaded:", loaded)
import django
django.setup()
from pqh_site.celery import app
from tasks_app.worker.steps import ReleaseTicker
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
    # pqh_site/celery.py -> the worker's step -> the services -> celery.py was a cycle kept
    # working by imports inside functions; none of them may hide one again.
    files = [ROOT / "pqh_site/celery.py", ROOT / "tasks_app/worker/steps.py"]
    files += sorted((ROOT / "tasks_app/services").glob("*.py"))
    assert [hit for path in files for hit in _local_imports(path)] == []


def test_the_fair_queue_core_imports_no_django():
    modules = sorted(p.stem for p in (ROOT / "fairqueue").glob("*.py") if p.stem != "__init__")
    assert {"core", "queue", "policy", "model", "scripts", "keys", "config"} <= set(modules)
    probe = (
        f"import sys, importlib; [importlib.import_module('fairqueue.' + m) for m in {modules!r}]; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'rest_framework', 'celery', 'kombu', 'tasks_app', 'users_app', 'pqh_site')))"
    )
    # A fresh interpreter with no Django settings at all: nothing may need them.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == "[]"


def _imported_modules(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_benchmarks_import_nothing_from_the_tests():
    hits = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "bench").rglob("*.py"))
        for name in sorted(_imported_modules(path))
        if name == "tests" or name.startswith("tests.")
    ]
    assert hits == []


def test_users_app_depends_on_nothing_in_tasks_app():
    # The dependency runs one way: tasks_app uses users' weights, caps and windows.
    hits = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "users_app").rglob("*.py"))
        for name in sorted(_imported_modules(path))
        if name == "tasks_app" or name.startswith("tasks_app.")
    ]
    assert hits == []
