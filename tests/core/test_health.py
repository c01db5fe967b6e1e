"""Liveness, readiness: ok, degraded (Redis/broker/beat) and 503 (database)."""

import time

import pytest
from django.db import connection

from core.checks import check_environment
from core.health import (
    WORKER_HEARTBEAT_KEY,
    record_beat_heartbeat,
    record_worker_heartbeat,
)
from tests.private_redis import private_redis


@pytest.mark.django_db
def test_live_answers_200(client):
    assert client.get("/health/live/").json() == {"status": "ok"}


@pytest.fixture
def real_stack_settings(settings):
    """Readiness as on `make stack`: a broker and beat are expected."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    return settings


@pytest.mark.django_db
def test_ready_is_ok_when_everything_answers(client, real_stack_settings):
    record_beat_heartbeat()
    record_worker_heartbeat()
    response = client.get("/health/ready/")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "redis": "ok",
            "broker": "ok",
            "beat": "ok",
            "worker": "ok",
        },
    }


@pytest.mark.django_db
def test_ready_is_degraded_without_a_worker_heartbeat(client, real_stack_settings):
    record_beat_heartbeat()
    response = client.get("/health/ready/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["worker"] == "missing"
    assert body["checks"]["beat"] == "ok"


@pytest.mark.django_db
def test_ready_is_degraded_when_the_worker_heartbeat_is_stale(client, real_stack_settings):
    from django.core.cache import cache

    real_stack_settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS = 60
    record_beat_heartbeat()
    cache.set(WORKER_HEARTBEAT_KEY, time.time() - 61, timeout=None)  # the worker died a minute ago
    body = client.get("/health/ready/").json()
    assert body["status"] == "degraded"
    assert body["checks"]["worker"] == "stale"
    cache.set(WORKER_HEARTBEAT_KEY, time.time() - 30, timeout=None)
    assert client.get("/health/ready/").json()["checks"]["worker"] == "ok"


@pytest.mark.django_db
def test_worker_heartbeat_is_unknown_when_the_cache_is_down(client, real_stack_settings):
    record_beat_heartbeat()
    with private_redis(6396) as server:
        real_stack_settings.CACHES = {
            "default": {**real_stack_settings.CACHES["default"], "LOCATION": server.url}
        }
        server.stop()
        response = client.get("/health/ready/")
    assert response.status_code == 200
    assert response.json()["checks"]["worker"] == "unknown"


@pytest.mark.django_db
def test_worker_heartbeat_is_not_configured_with_in_process_tasks(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert client.get("/health/ready/").json()["checks"]["worker"] == "not_configured"


def test_a_worker_heartbeat_max_age_below_two_intervals_is_refused(settings):
    settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS = 19
    assert "core.E007" in [error.id for error in check_environment()]
    settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS = 20
    assert "core.E007" not in [error.id for error in check_environment()]


@pytest.mark.django_db
def test_ready_is_degraded_without_a_beat_heartbeat(client, real_stack_settings):
    body = client.get("/health/ready/").json()
    assert body["status"] == "degraded"
    assert body["checks"]["beat"] == "missing"


@pytest.mark.django_db
def test_ready_is_degraded_when_the_beat_heartbeat_is_stale(client, real_stack_settings):
    from django.core.cache import cache

    cache.set("beat:heartbeat", 0, timeout=None)  # 1970: long stale
    body = client.get("/health/ready/").json()
    assert body["status"] == "degraded"
    assert body["checks"]["beat"] == "stale"


@pytest.mark.django_db
def test_ready_is_degraded_when_redis_and_broker_are_stopped(client, real_stack_settings):
    record_beat_heartbeat()
    record_worker_heartbeat()
    with private_redis(6389) as server:
        real_stack_settings.REDIS_URL = server.url
        real_stack_settings.CELERY_BROKER_URL = server.url
        assert client.get("/health/ready/").json()["status"] == "ok"
        server.stop()
        response = client.get("/health/ready/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == "unavailable"
    assert body["checks"]["broker"] == "unavailable"
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_ready_is_503_when_the_database_is_unreachable(client):
    original_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        response = client.get("/health/ready/")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original_port
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["database"] == "unavailable"
