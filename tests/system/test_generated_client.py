"""A client generated from the schema the app serves, untouched, drives the API.

openapi-python-client (pinned in requirements-dev.txt) reads `/api/schema/` from a live server,
offline, and writes a package (httpx + attrs) into a temporary directory; the test imports it
and, with a user's token, submits (an object `x` and a string `x`, on both routes), reads,
lists, cancels, asks for its usage, and meets refusals, each read through the generated models.
Whatever the schema says wrongly about a request or an answer shows here as a client that
cannot send it or cannot read it.
"""

import importlib
import subprocess
import sys
import uuid
from http import HTTPStatus

import httpx
import pytest
from django.utils import timezone

from tasks_app.models import TaskRecord
from tests.conftest import make_user
from users_app.models import Profile

PACKAGE = "pqh_client"


@pytest.fixture
def client_package(live_server, tmp_path, monkeypatch):
    """Generate the client from the live server's schema and import it; forget it afterwards."""
    schema = httpx.get(f"{live_server.url}/api/schema/", params={"format": "json"}, timeout=30)
    assert schema.status_code == 200
    (tmp_path / "schema.json").write_text(schema.text)
    # No post hooks: the generator would run ruff over the package, which changes nothing it
    # does; the package stays exactly as generated.
    (tmp_path / "config.yaml").write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n")
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(tmp_path / "schema.json"),
            "--config",
            str(tmp_path / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
            "--fail-on-warning",  # anything of the schema it could not turn into code
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module(PACKAGE)
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def module(name: str):
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.mark.django_db(transaction=True)
def test_a_generated_client_submits_reads_lists_cancels_and_reads_usage(
    client_package, live_server, no_worker
):
    api = module("api.api")
    seed = module("api.original_routes")
    models = module("models")
    for name in (
        "api_tasks_create",
        "api_tasks_retrieve",
        "api_tasks_list",
        "api_tasks_destroy",
        "api_usage_retrieve",
    ):
        importlib.import_module(f"{api.__name__}.{name}")
    for name in ("seed_submit", "seed_result"):
        importlib.import_module(f"{seed.__name__}.{name}")
    alice, bob = make_user("alice")[1], make_user("bob")[1]
    opened = []

    def client(key: str):
        made = client_package.AuthenticatedClient(
            base_url=live_server.url, token=key, prefix="Token", timeout=30
        )
        opened.append(made)
        return made

    me, other = client(alice.key), client(bob.key)
    try:
        drive(api, seed, models, me, other, client("wrong"))
    finally:
        # Kept-alive connections hold a server thread, and its database session, open.
        for made in opened:
            made.get_httpx_client().close()


def drive(api, seed, models, me, other, nobody):
    """Submit, read, list, cancel and read usage as `me`; be refused as `other` and `nobody`."""

    # Submit: x is any JSON value, on the API's route...
    submitted = {}
    for x in ({"prompt": "hello", "n": [1, 2.5, None, True]}, "x", None, 7):
        answer = api.api_tasks_create.sync_detailed(client=me, body=models.Submit(x=x))
        assert answer.status_code == HTTPStatus.ACCEPTED, answer.content
        task = answer.parsed
        assert isinstance(task, models.TaskDetail)
        assert task.x == x and task.status == models.TaskStatusEnum.PENDING
        assert isinstance(task.priority, models.Priority) and task.progress is None
        submitted[task.task_id] = x
    # ... and on the original's.
    for x in ({"prompt": "hello"}, "x"):
        answer = seed.seed_submit.sync_detailed(client=me, body=models.Submit(x=x))
        assert answer.status_code == HTTPStatus.ACCEPTED, answer.content
        assert isinstance(answer.parsed, models.SeedAccepted) and answer.parsed.user_id == "alice"
        submitted[answer.parsed.task_id] = x
    stored = dict(TaskRecord.objects.values_list("task_id", "input"))
    assert stored == submitted

    # An idempotent retry: 200, the same task, read by the same model.
    first = api.api_tasks_create.sync_detailed(
        client=me, body=models.Submit(x="once"), idempotency_key="k-1"
    )
    again = api.api_tasks_create.sync_detailed(
        client=me, body=models.Submit(x="once"), idempotency_key="k-1"
    )
    assert (first.status_code, again.status_code) == (HTTPStatus.ACCEPTED, HTTPStatus.OK)
    assert again.parsed.task_id == first.parsed.task_id
    last = first.parsed.task_id

    # Read one task: the detail, with its priority.
    task = api.api_tasks_retrieve.sync(client=me, task_id=last)
    assert isinstance(task, models.TaskDetail) and task.task_id == last
    assert task.priority.level == task.level and task.priority.unit == models.UnitEnum.TASKS
    assert isinstance(task.position, int) and task.wait_seconds >= 0
    polled = seed.seed_result.sync(client=me, task_id=last)
    assert isinstance(polled, models.SeedResult) and polled.task_status.value == "PENDING"

    # A task that has ended, with its result, is read by the same models.
    ended = TaskRecord.objects.exclude(pk=last).first()
    TaskRecord.objects.filter(pk=ended.pk).update(
        status="SUCCESS",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        run_seconds=60.00085645299998,
    )
    from django_celery_results.models import TaskResult

    TaskResult.objects.create(
        task_id=str(ended.pk), status="SUCCESS", result='{"input_x": "foo", "n": [1, 2]}'
    )
    done = api.api_tasks_retrieve.sync(client=me, task_id=ended.pk)
    assert done.status == models.TaskStatusEnum.SUCCESS and done.position is None
    assert done.result == {"input_x": "foo", "n": [1, 2]}
    assert done.priority.run_seconds == 60.001 and isinstance(
        done.finished_at, type(task.submitted_at)
    )

    # List: a page of tasks, newest first.
    page = api.api_tasks_list.sync(client=me)
    assert isinstance(page, models.PaginatedTaskList)
    assert page.count == len(submitted) + 1 and page.next_ is None and page.previous is None
    assert [row.task_id for row in page.results][0] == last
    assert all(isinstance(row, models.Task) for row in page.results)
    assert {row.task_id: row.x for row in page.results} == {**submitted, last: "once"}

    # Cancel one that has not started; cancelling it again is a 409 the client reads.
    cancelled = api.api_tasks_destroy.sync_detailed(client=me, task_id=last)
    assert cancelled.status_code == HTTPStatus.OK
    assert cancelled.parsed.status == models.TaskStatusEnum.REVOKED
    again = api.api_tasks_destroy.sync_detailed(client=me, task_id=last)
    assert again.status_code == HTTPStatus.CONFLICT and isinstance(again.parsed, models.Error)

    # Usage: the window, the cap and the tasks it counts.
    usage = api.api_usage_retrieve.sync(client=me)
    assert isinstance(usage, models.Usage)
    assert usage.count == len(submitted) + 1 and usage.unit == models.UnitEnum.TASKS
    # Seven submitted, one cancelled (the one that ended was written straight into the history,
    # so its place is still counted).
    assert (usage.cap, usage.active) == (100, len(submitted))
    assert usage.level0_at is not None and usage.next_level >= 1

    # Refusals, as the generated client reports them.
    hidden = api.api_tasks_retrieve.sync_detailed(client=other, task_id=last)
    assert hidden.status_code == HTTPStatus.NOT_FOUND
    assert isinstance(hidden.parsed, models.Error) and hidden.parsed.detail == "Not found."
    missing = api.api_tasks_retrieve.sync_detailed(client=me, task_id=uuid.uuid4())
    assert missing.status_code == HTTPStatus.NOT_FOUND
    not_mine = api.api_tasks_destroy.sync_detailed(client=other, task_id=ended.pk)
    assert not_mine.status_code == HTTPStatus.NOT_FOUND
    bad = api.api_tasks_create.sync_detailed(client=me, body=models.Submit(x="nul\x00"))
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert isinstance(bad.parsed, models.FieldErrors)
    assert bad.parsed.additional_properties["x"][0].startswith("x: contains the control character")
    bad_key = api.api_tasks_create.sync_detailed(
        client=me, body=models.Submit(x=1), idempotency_key="k" * 256
    )
    assert bad_key.status_code == HTTPStatus.BAD_REQUEST
    assert isinstance(bad_key.parsed, models.Error) and "Idempotency-Key" in bad_key.parsed.detail
    refused = api.api_usage_retrieve.sync_detailed(client=nobody)
    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert isinstance(refused.parsed, models.Error)
    no_page = api.api_tasks_list.sync_detailed(client=me, page=99)
    assert no_page.status_code == HTTPStatus.NOT_FOUND
    assert no_page.parsed.detail == "Invalid page."
    capped = Profile.objects.get(user__username="bob")
    capped.max_active = 1
    capped.save()  # as the admin does: the server's remembered user is renewed
    assert (
        api.api_tasks_create.sync_detailed(client=other, body=models.Submit(x=1)).status_code == 202
    )
    full = api.api_tasks_create.sync_detailed(client=other, body=models.Submit(x=2))
    assert full.status_code == HTTPStatus.TOO_MANY_REQUESTS and full.headers["Retry-After"] == "30"
    assert isinstance(full.parsed, models.UserCapError)
    assert (full.parsed.limit, full.parsed.active) == (1, 1)
