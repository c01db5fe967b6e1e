"""Metrics on ``prometheus-client``, exposed at ``/metrics`` (Prometheus text format).

Every metric the system exports is declared in ``DECLARED`` below, with its
labels, so the dashboard and alert rules under ``ops/`` can be checked against
it. Callers keep a small API: ``increment``, ``set_gauge``, ``observe`` and
``timer``; a name not declared is created on first use (a counter or gauge with
the labels of that call).

Processes: with ``PROMETHEUS_MULTIPROC_DIR`` set before start-up (``make
stack``, containers), prometheus-client's multiprocess mode writes each
process's values to memory-mapped files in that directory, and a scrape of any
gunicorn worker adds up every gunicorn worker, Celery worker and beat process.
The directory is emptied when the process group starts (``scripts/stack.py``)
and a dead process's live gauges are dropped (``config/gunicorn.conf.py``,
``core.observability``). Without it (tests, ``make run``) the values live in
this process's default registry.

A metric never breaks the work it measures: an error while counting is logged
and swallowed.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

LOCAL_ADDRESSES = {"127.0.0.1", "::1"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds: requests are milliseconds, checkouts and draws call the network.
REQUEST_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WORK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

disable_created_metrics()  # no ``*_created`` series: half the lines, nothing lost


def process_identifier(pid: int | None = None) -> str:
    """Names a process's files in the multiprocess directory: host and pid.

    The host part keeps containers that share one directory (docker-compose.yml)
    from writing to the same file when their pids coincide.
    """
    host = socket.gethostname().replace("_", "-")  # "_" separates the parts of a file name
    return f"{host}-{os.getpid() if pid is None else pid}"


if os.environ.get(MULTIPROC_ENV):
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue(process_identifier)


@dataclass(frozen=True)
class Spec:
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = WORK_BUCKETS
    # How a gauge from several processes adds up (prometheus-client multiprocess modes).
    gauge_mode: str = "mostrecent"


def _counter(help_text: str, *labels: str) -> Spec:
    return Spec("counter", help_text, labels)


DECLARED: dict[str, Spec] = {
    # HTTP (core.observability.RequestMetricsMiddleware)
    "http_requests_total": _counter("HTTP requests answered", "method", "route", "status"),
    "http_request_duration_seconds": Spec(
        "histogram",
        "Time to answer an HTTP request",
        ("method", "route", "status"),
        REQUEST_BUCKETS,
    ),
    # Reservations
    "reservations_created_total": _counter("Reservations created"),
    "reservations_expired_total": _counter("Pending reservations expired by the sweep"),
    "reservations_cancelled_total": _counter("Pending reservations cancelled by their player"),
    "reservations_expiry_errors_total": _counter("Houses whose expiry sweep failed"),
    "sold_out_answers_total": _counter("Sold-out answers, by who answered", "path"),
    "inventory_fallback_total": _counter("Inventory calls answered by the database", "reason"),
    "inventory_redis_failures_total": _counter("Redis inventory calls that failed", "operation"),
    "inventory_rebuilds_total": _counter("Redis inventory hashes rebuilt", "reason"),
    "inventory_drift_tickets": Spec(
        "gauge", "Redis minus database available tickets at the last sync", ("house",)
    ),
    "circuit_breaker_open": Spec(
        "gauge",
        "1 while a dependency's circuit breaker is open in some live process",
        ("dependency",),
        gauge_mode="livemax",
    ),
    # Checkout, payments, refunds
    "checkouts_total": _counter("Checkouts finished, by outcome", "outcome"),
    "checkout_duration_seconds": Spec(
        "histogram", "Charge plus ticket issuance of one checkout", ("outcome",)
    ),
    "checkout_recovery_errors_total": _counter("Stuck checkouts recovery could not resolve"),
    "checkout_drains_requeued_total": _counter("Drains queued for checkouts that lost theirs"),
    "payments_charged_after_abandonment_total": _counter("Charges that arrived after abandoning"),
    "refunds_total": _counter("Refund state changes", "status"),
    # Draws
    "draw_duration_seconds": Spec("histogram", "Time to complete one draw", ("step",)),
    "draws_completed_total": _counter("Draws completed", "source"),
    "draws_errors_total": _counter("Draw steps that failed", "step"),
    "draws_needs_attention_total": _counter("Draws handed to staff", "reason"),
    "draws_ticket_count_mismatch_total": _counter("Frozen ticket lists that did not add up"),
    "draws_redrawn_total": _counter("Draws redrawn"),
    "lotteries_cancelled_total": _counter("Lotteries cancelled", "reason"),
    # Background work
    "dead_letters_total": _counter("Tasks that failed for good", "task"),
    "dead_letters_resolved_total": _counter("Dead letters settled", "task"),
    "dead_letter_requeue_failures_total": _counter("Dead letters not requeued", "task"),
    "domain_events_total": _counter("Outbox events delivered", "type"),
    "notifications_sent_total": _counter("Notifications sent", "kind"),
    "notifications_send_errors_total": _counter("Notifications that failed", "kind"),
    "celery_tasks_total": _counter("Celery task runs, by final state", "task", "state"),
    "celery_task_failures_total": _counter("Celery task runs that raised", "task"),
    "celery_task_retries_total": _counter("Celery task retries", "task"),
    "celery_task_runtime_seconds": Spec("histogram", "Celery task runtime", ("task",)),
}

# Computed from the database at scrape time (``DatabaseGauges``), not stored.
SCRAPE_TIME_GAUGES = {
    "outbox_backlog_events": "Outbox events not delivered yet",
    "outbox_oldest_event_age_seconds": "Age of the oldest undelivered outbox event",
    "dead_letters_open": "Dead letters waiting for staff",
}

_metrics: dict[str, Counter | Gauge | Histogram] = {}
_children: dict[tuple, object] = {}
_create_lock = threading.Lock()
_warned: set[str] = set()


def _build(name: str, spec: Spec) -> Counter | Gauge | Histogram:
    if spec.kind == "counter":
        return Counter(name, spec.help, spec.labels)
    if spec.kind == "gauge":
        return Gauge(name, spec.help, spec.labels, multiprocess_mode=spec.gauge_mode)
    return Histogram(name, spec.help, spec.labels, buckets=spec.buckets)


def _child(name: str, kind: str, labels: dict[str, str]) -> object:
    """The metric (or its labelled child) for these labels, cached: the hot path is a dict hit."""
    key = (name, *sorted(labels.items()))
    child = _children.get(key)
    if child is not None:
        return child
    with _create_lock:
        metric = _metrics.get(name)
        if metric is None:
            spec = DECLARED.get(name) or Spec(kind, name.replace("_", " "), tuple(sorted(labels)))
            metric = _metrics[name] = _build(name, spec)
        child = metric.labels(**{k: str(v) for k, v in labels.items()}) if labels else metric
        _children[key] = child
    return child


def _warn_once(name: str, exc: Exception) -> None:
    if name not in _warned:
        _warned.add(name)
        logger.warning("metric %s not recorded: %s", name, exc)


def increment(name: str, amount: float = 1, **labels: str) -> None:
    try:
        _child(name, "counter", labels).inc(amount)
    except Exception as exc:  # never break the work being measured
        _warn_once(name, exc)


def set_gauge(name: str, value: float, **labels: str) -> None:
    try:
        _child(name, "gauge", labels).set(value)
    except Exception as exc:
        _warn_once(name, exc)


def observe(name: str, value: float, **labels: str) -> None:
    """One observation of a histogram (seconds, for the ``*_seconds`` ones)."""
    try:
        _child(name, "histogram", labels).observe(value)
    except Exception as exc:
        _warn_once(name, exc)


@contextmanager
def timer(name: str, **labels: str) -> Iterator[None]:
    """Observe the time the block took into histogram ``name`` (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        observe(name, time.perf_counter() - started, **labels)


def declare_all() -> None:
    """Create every declared metric, so a scrape lists them before their first use."""
    for name, spec in DECLARED.items():
        if name not in _metrics:
            with _create_lock:
                if name not in _metrics:
                    _metrics[name] = _build(name, spec)
                    if not spec.labels:
                        _children[(name,)] = _metrics[name]


def reset() -> None:
    """Forget every value of this process (tests: each starts from zero, as after a restart)."""
    with _create_lock:
        for metric in _metrics.values():
            REGISTRY.unregister(metric)
        _metrics.clear()
        _children.clear()


# ---- reading ---------------------------------------------------------------


class DatabaseGauges(Collector):
    """Gauges read from PostgreSQL at scrape time: they are right whichever process asks."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError
        from django.db.models import Count, Min
        from django.utils import timezone

        from core.models import DeadLetter, DeadLetterStatus, OutboxEvent

        try:
            outbox = OutboxEvent.objects.filter(delivered_at__isnull=True).aggregate(
                backlog=Count("id"), oldest=Min("created_at")
            )
            open_letters = DeadLetter.objects.filter(status=DeadLetterStatus.OPEN).count()
        except DatabaseError:
            logger.warning("metrics: database gauges skipped", exc_info=True)
            return
        oldest = outbox["oldest"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        values = {
            "outbox_backlog_events": outbox["backlog"],
            "outbox_oldest_event_age_seconds": max(age, 0.0),
            "dead_letters_open": open_letters,
        }
        for name, help_text in SCRAPE_TIME_GAUGES.items():
            yield GaugeMetricFamily(name, help_text, value=values[name])


class _ThisProcess(Collector):
    def collect(self) -> Iterator:
        yield from REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def scrape_registry(*, database: bool = True) -> CollectorRegistry:
    """All processes' metrics (multiprocess mode) or this process's, plus the database gauges."""
    declare_all()
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ThisProcess())
    if database:
        registry.register(DatabaseGauges())
    return registry


def series_name(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    rendered = ",".join(f'{key}="{_escape(str(value))}"' for key, value in sorted(labels.items()))
    return f"{name}{{{rendered}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def snapshot() -> tuple[dict[str, float], dict[str, float]]:
    """(counters, gauges) by series name, from what a scrape would show (without the database).

    Counters include each histogram's ``_count`` and ``_sum``.
    """
    counters: dict[str, float] = {}
    gauges: dict[str, float] = {}
    for family in scrape_registry(database=False).collect():
        for sample in family.samples:
            series = series_name(sample.name, sample.labels)
            counted = family.type == "counter" and sample.name.endswith("_total")
            summed = family.type == "histogram" and sample.name.endswith(("_count", "_sum"))
            if counted or summed:
                counters[series] = sample.value
            elif family.type == "gauge":
                gauges[series] = sample.value
    return counters, gauges


def render_prometheus() -> str:
    return generate_latest(scrape_registry()).decode()


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
    return HttpResponse(render_prometheus(), content_type=CONTENT_TYPE)
