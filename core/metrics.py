"""Counters and gauges shared by every process, exposed at ``/metrics`` (Prometheus text).

Values live in Redis hashes so gunicorn workers, Celery workers and beat add up
to one view. Metrics never break the work they measure: when Redis cannot be
reached the value is kept in this process until it can.
"""

import hmac
import logging
import threading
import time
from collections import defaultdict

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

COUNTERS_KEY = "metrics:counters"
GAUGES_KEY = "metrics:gauges"
LOCAL_ADDRESSES = {"127.0.0.1", "::1"}

_local_counters: dict[str, float] = defaultdict(float)
_local_gauges: dict[str, float] = {}
_lock = threading.Lock()
_client: redis.Redis | None = None
_client_url: str | None = None
# After a failure, skip Redis for a while instead of paying a timeout per call.
RETRY_REDIS_AFTER_SECONDS = 5.0
_redis_down_until = 0.0


def _redis() -> redis.Redis | None:
    global _client, _client_url
    url = settings.REDIS_URL
    if not url or time.monotonic() < _redis_down_until:
        return None
    if _client is None or _client_url != url:
        timeout = settings.REDIS_SOCKET_TIMEOUT
        _client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        _client_url = url
    return _client


def _mark_redis_down() -> None:
    global _redis_down_until
    _redis_down_until = time.monotonic() + RETRY_REDIS_AFTER_SECONDS


def series_name(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    rendered = ",".join(f'{key}="{_escape(str(value))}"' for key, value in sorted(labels.items()))
    return f"{name}{{{rendered}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def increment(name: str, amount: float = 1, **labels: str) -> None:
    series = series_name(name, labels)
    client = _redis()
    if client is not None:
        try:
            client.hincrbyfloat(COUNTERS_KEY, series, amount)
            return
        except (redis.RedisError, OSError):
            _mark_redis_down()
    with _lock:
        _local_counters[series] += amount


def set_gauge(name: str, value: float, **labels: str) -> None:
    series = series_name(name, labels)
    client = _redis()
    if client is not None:
        try:
            client.hset(GAUGES_KEY, series, value)
            return
        except (redis.RedisError, OSError):
            _mark_redis_down()
    with _lock:
        _local_gauges[series] = value


def snapshot() -> tuple[dict[str, float], dict[str, float]]:
    counters: dict[str, float] = defaultdict(float)
    gauges: dict[str, float] = {}
    client = _redis()
    if client is not None:
        try:
            for series, value in client.hgetall(COUNTERS_KEY).items():
                counters[series.decode()] += float(value)
            gauges.update({k.decode(): float(v) for k, v in client.hgetall(GAUGES_KEY).items()})
        except (redis.RedisError, OSError):
            _mark_redis_down()
            counters["metrics_store_unavailable"] = 1
    with _lock:
        for series, value in _local_counters.items():
            counters[series] += value
        gauges.update(_local_gauges)
    return dict(counters), gauges


def render_prometheus() -> str:
    counters, gauges = snapshot()
    lines: list[str] = []
    for kind, values in (("counter", counters), ("gauge", gauges)):
        seen: set[str] = set()
        for series in sorted(values):
            name = series.split("{", 1)[0]
            if name not in seen:
                lines.append(f"# TYPE {name} {kind}")
                seen.add(name)
            lines.append(f"{series} {values[series]:g}")
    return "\n".join(lines) + "\n"


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``/metrics``: bearer ``METRICS_TOKEN`` when set, else loopback clients only."""
    token = settings.METRICS_TOKEN
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        allowed = hmac.compare_digest(supplied.encode(), token.encode())
    else:
        allowed = request.META.get("REMOTE_ADDR") in LOCAL_ADDRESSES
    if not allowed:
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(render_prometheus(), content_type="text/plain; version=0.0.4")
