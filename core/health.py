"""Liveness and readiness probes.

Readiness: the database is required (503 without it); Redis, the broker and
the beat and worker heartbeats are accelerators or background work, so their
loss makes the answer ``degraded`` but still 200.
"""

import time
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from core.ratelimit import CACHE_ERRORS

BEAT_HEARTBEAT_KEY = "beat:heartbeat"
WORKER_HEARTBEAT_KEY = "worker:heartbeat"
# A running worker's consumer writes its heartbeat this often (config/celery.py).
WORKER_HEARTBEAT_INTERVAL_SECONDS = 10
PROBE_TIMEOUT_SECONDS = 0.5


def record_beat_heartbeat() -> None:
    cache.set(BEAT_HEARTBEAT_KEY, time.time(), timeout=None)


def record_worker_heartbeat() -> None:
    cache.set(WORKER_HEARTBEAT_KEY, time.time(), timeout=None)


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:  # any driver error means "not ready"
        return "unavailable"


def check_redis() -> str:
    if not settings.REDIS_URL:
        return "not_configured"
    return _ping(settings.REDIS_URL)


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "not_configured"
    return _ping(settings.CELERY_BROKER_URL)


def _ping(url: str) -> str:
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=PROBE_TIMEOUT_SECONDS, socket_connect_timeout=PROBE_TIMEOUT_SECONDS
        )
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except (redis.RedisError, OSError):
        return "unavailable"


def check_beat() -> str:
    return _check_heartbeat(BEAT_HEARTBEAT_KEY, settings.BEAT_HEARTBEAT_MAX_AGE_SECONDS)


def check_worker() -> str:
    """A consuming worker writes this heartbeat; a dead or disconnected one stops."""
    return _check_heartbeat(WORKER_HEARTBEAT_KEY, settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS)


def _check_heartbeat(key: str, max_age_seconds: int) -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "not_configured"
    try:
        last_seen = cache.get(key)
    except CACHE_ERRORS:
        return "unknown"
    if last_seen is None:
        return "missing"
    age = time.time() - float(last_seen)
    return "ok" if age <= max_age_seconds else "stale"


def readiness() -> tuple[int, dict[str, Any]]:
    checks = {
        "database": check_database(),
        "redis": check_redis(),
        "broker": check_broker(),
        "beat": check_beat(),
        "worker": check_worker(),
    }
    if checks["database"] != "ok":
        return 503, {"status": "unavailable", "checks": checks}
    healthy = all(value in ("ok", "not_configured") for value in checks.values())
    return 200, {"status": "ok" if healthy else "degraded", "checks": checks}


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    status, body = readiness()
    response = JsonResponse(body, status=status)
    if status == 503:
        response["Retry-After"] = "5"
    return response
