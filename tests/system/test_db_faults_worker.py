"""PostgreSQL fails under real workers: nothing is lost, every task ends once it is back.

The workers reach PostgreSQL through a TcpProxy the test cuts (connections dropped mid-task,
new ones refused), or as a role of their own whose connection limit the test sets to 0 (the
server itself refuses them: "too many connections"). The shared server is never stopped.
"""

import contextlib
import threading
import time

import psycopg
import pytest
from celery import states
from django.conf import settings
from django.utils import timezone
from django_celery_results.models import TaskResult
from psycopg import sql

from fairqueue.testing import TcpProxy
from pqh_site.database import connect_params
from tasks_app.models import TaskRecord
from tasks_app.ops import events
from tasks_app.services import runs
from tasks_app.services.submission import task_submit
from tests.conftest import Worker, make_user, wait_for
from tests.conftest import test_database_url as database_url
from tests.queue_state import active_count

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FINAL = (states.SUCCESS, states.FAILURE, states.REVOKED)


def all_final(records: list[TaskRecord]) -> bool:
    pks = [r.pk for r in records]
    return TaskRecord.objects.filter(pk__in=pks, status__in=FINAL).count() == len(pks)


def assert_each_succeeded_once(records: list[TaskRecord]) -> None:
    """The history row and the one stored result agree: SUCCESS."""
    for record in records:
        record.refresh_from_db()
        stored = TaskResult.objects.filter(task_id=str(record.pk))
        assert record.status == states.SUCCESS, (record.pk, record.status)
        assert [r.status for r in stored] == [states.SUCCESS], record.pk


def admin_connection() -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(dbname=db["NAME"], autocommit=True, **connect_params(db))


@pytest.fixture
def proxy():
    port = settings.DATABASES["default"]["PORT"] or 5432
    proxy = TcpProxy(int(port)).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def start_worker(worker_env, celery_worker):
    """Start a worker with extra settings in place of the shared one; stop it afterwards."""
    started: list[Worker] = []
    celery_worker.stop()

    def start(**env: str) -> Worker:
        worker = Worker(concurrency=2, env={**worker_env, "PQH_TASK_SECONDS": "2", **env})
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.stop()
    celery_worker.start()


@pytest.mark.parametrize("retry_seconds", ["300", "1"], ids=["retried-in-place", "handed-back"])
def test_workers_ride_out_a_database_outage_and_finish_every_task(
    start_worker, proxy, retry_seconds
):
    url = database_url().replace(f":{proxy.upstream[1]}/", f":{proxy.port}/")
    # 4 s tasks, the outage from their start to 6 s: a test process slowed down by a loaded
    # machine may see the start late, and the run must still end inside the outage.
    worker = start_worker(
        DATABASE_URL=url, PQH_DB_RETRY_SECONDS=retry_seconds, PQH_TASK_SECONDS="4"
    )
    user, _ = make_user("alice")
    running = task_submit(user=user, x="running when PostgreSQL goes")
    wait_for(lambda: TaskRecord.objects.filter(pk=running.pk, status=states.STARTED).exists())
    proxy.cut()
    try:
        # Accepted meanwhile (the web still reaches PostgreSQL); a free slot tries to claim one.
        later = [task_submit(user=user, x=i) for i in range(3)]
        time.sleep(6)  # the running task ends in the outage and cannot record it
    finally:
        proxy.restore()
    records = [running, *later]
    wait_for(lambda: all_final(records), timeout=60)
    assert_each_succeeded_once(records)
    log = worker.log.read_text()
    assert f"claiming {later[0].pk}: PostgreSQL is unavailable" in log
    assert f"finishing {running.pk}: PostgreSQL is unavailable" in log
    running.refresh_from_db()
    if retry_seconds == "1":
        # Its end could not be recorded in time: the message went back and it ran again.
        assert "not finished" in log and running.attempts == 2
    else:
        assert running.attempts == 1


@pytest.fixture
def worker_role(django_db_setup):
    """A role for the workers, allowed the test database; `limit(n)` sets its connection limit."""
    role = f"{settings.DATABASES['default']['NAME']}_worker"
    ident = sql.Identifier(role)
    with admin_connection() as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
            conn.execute(sql.SQL("DROP ROLE {}").format(ident))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
        for kind in ("TABLES", "SEQUENCES"):
            conn.execute(
                sql.SQL("GRANT ALL ON ALL {} IN SCHEMA public TO {}").format(sql.SQL(kind), ident)
            )

    def limit(n: int) -> None:
        with admin_connection() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(ident, sql.Literal(n)))

    yield role, limit
    with admin_connection() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
        )
        conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
        conn.execute(sql.SQL("DROP ROLE {}").format(ident))


def test_a_worker_that_postgresql_refuses_runs_every_task_once_it_is_let_in(
    start_worker, worker_role
):
    role, limit = worker_role
    limit(0)  # "too many connections": the server refuses every new connection of the role
    url = database_url().replace("postgres://postgres@", f"postgres://{role}@")
    # The worker starts while it cannot connect, and claims while it is refused.
    worker = start_worker(DATABASE_URL=url)
    user, _ = make_user("alice")
    records = [task_submit(user=user, x=i) for i in range(3)]
    wait_for(lambda: "too many connections" in worker.log.read_text(), timeout=20)
    assert TaskRecord.objects.filter(status=states.PENDING).count() == 3
    limit(-1)
    wait_for(lambda: all_final(records), timeout=60)
    assert_each_succeeded_once(records)


@contextlib.contextmanager
def connected_through(proxy):
    """This process's database connection goes through `proxy` inside the block."""
    from django.db import connection

    db = connection.settings_dict
    port = db["PORT"]
    connection.close()
    db["PORT"] = str(proxy.port)
    try:
        yield
    finally:
        connection.close()
        db["PORT"] = port


def test_a_claimed_task_is_logged_as_started_without_postgresql(proxy, no_worker):
    """Between the claim and the work the worker logs the start; PostgreSQL may be gone then.

    Before the fix the log line loaded the task's user with a query of its own, outside the
    claim's retries: a cut at that moment failed the task with no end recorded.
    """

    user, _ = make_user("alice")
    record = task_submit(user=user, x=1)
    with connected_through(proxy):
        claimed = runs.task_claim(task_id=str(record.pk), worker="w@test")
        proxy.cut()
        try:
            events.event_started(claimed)
        finally:
            proxy.restore()
    assert claimed.user.pk == user.pk


def test_a_finish_retried_after_its_commit_was_lost_still_frees_the_cap_place(
    proxy, no_worker, monkeypatch
):
    """The COMMIT of a finish goes through but its answer is lost with the connection.

    The retry finds the task ended (not this try's to finish) and must still take it out of
    its user's active set; before the fix the place stayed taken until the full sweep.
    """
    from django.db import connection, transaction

    from tasks_app.services.publishing import celery_app
    from tasks_app.worker.db_retry import db_retry

    user, _ = make_user("alice")
    record = task_submit(user=user, x=1)
    claimed = runs.task_claim(task_id=str(record.pk), worker="w@test")
    assert active_count(user_id=user.pk) == 1

    store_result = celery_app.backend.store_result
    lost = []

    def lose_the_answer() -> None:
        # After the COMMIT: the server has it, the client sees the connection drop.
        lost.append(True)
        proxy.cut()
        threading.Timer(0.5, proxy.restore).start()
        connection.cursor().execute("SELECT 1")

    def store_then_lose(*args, **kwargs):
        result = store_result(*args, **kwargs)
        if not lost:
            transaction.on_commit(lose_the_answer)
        return result

    monkeypatch.setattr(celery_app.backend, "store_result", store_then_lose)
    with connected_through(proxy):
        finished = db_retry(
            lambda: runs.task_finish(record=claimed, status=states.SUCCESS, result=1),
            what="finishing",
            seconds=10,
        )
    assert lost
    assert finished is False  # the retry found it ended by the try whose answer was lost
    assert_each_succeeded_once([record])
    assert active_count(user_id=user.pk) == 0


def test_a_delivery_of_a_task_that_already_ended_frees_its_cap_place(start_worker):
    """A finish committed, lost its answer and ran out of retries: its message went back.

    The row is final but the place under the cap is still held. The redelivery finds the task
    ended (its claim refuses it) and must free the place.
    """
    user, _ = make_user("alice")
    record = task_submit(user=user, x=1)  # no worker yet: it waits in the fair queue
    TaskRecord.objects.filter(pk=record.pk).update(
        status=states.SUCCESS, started_at=timezone.now(), finished_at=timezone.now()
    )
    TaskResult.objects.create(task_id=str(record.pk), status=states.SUCCESS, result="1")
    assert active_count(user_id=user.pk) == 1

    start_worker(PQH_TASK_SECONDS="0.1")  # takes the waiting task: released, delivered, refused

    wait_for(lambda: active_count(user_id=user.pk) == 0, timeout=30)
    assert_each_succeeded_once([record])
