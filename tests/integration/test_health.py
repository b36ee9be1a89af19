"""/healthz answers without I/O; /readyz checks PostgreSQL, Redis and a live worker."""

import pytest
from rest_framework.test import APIClient

from fairqueue.testing import count_redis_round_trips, free_port


def test_liveness_needs_no_database_no_redis_and_no_login():
    # No django_db mark: any query would raise here.
    with count_redis_round_trips() as calls:
        response = APIClient().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert calls == []


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_ready_when_postgres_redis_and_a_worker_answer(celery_worker):
    response = APIClient().get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready" and body["failed"] == []
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "postgres": True,
        "redis": True,
        "workers": True,
    }


@pytest.mark.django_db
def test_not_ready_without_redis_and_says_so(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = APIClient().get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unready" and body["failed"] == ["redis", "workers"]
    assert body["checks"]["postgres"]["ok"] is True
    assert body["checks"]["redis"]["error"] == "unreachable (ConnectionError)"
    assert "Redis is unreachable" in body["checks"]["workers"]["error"]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_not_ready_while_no_worker_runs(celery_worker, settings):
    settings.PQH_HEALTH_TIMEOUT = 0.5
    celery_worker.stop()
    try:
        response = APIClient().get("/readyz")
        body = response.json()
        assert response.status_code == 503 and body["failed"] == ["workers"]
        assert body["checks"]["workers"]["error"] == "no worker answered a ping within 0.5 s"
    finally:
        celery_worker.start()
    assert APIClient().get("/readyz").status_code == 200


@pytest.mark.django_db
def test_not_ready_when_postgres_is_cut(monkeypatch):
    from django.db import OperationalError, connection

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = APIClient().get("/readyz")
    assert response.status_code == 503
    assert "postgres" in response.json()["failed"]
    assert response.json()["checks"]["postgres"]["error"] == "unreachable (OperationalError)"
