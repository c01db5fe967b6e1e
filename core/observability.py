"""Where metrics are taken without the measured code knowing: HTTP requests and Celery tasks.

``RequestMetricsMiddleware`` (outermost in ``MIDDLEWARE``) counts and times
every request by its URL *route* (``api/v1/houses/<int:pk>/reserve/``, never
the raw path, so ids do not make new series) and status. The Celery signal
handlers count task runs, failures and retries and time each run by task
name; they are connected when Django starts (``CoreConfig.ready``), which the
Celery worker does too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from celery import signals
from django.http import HttpRequest, HttpResponse

from core import metrics

logger = logging.getLogger(__name__)

UNMATCHED_ROUTE = "<unmatched>"


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNMATCHED_ROUTE
    return match.route


class RequestMetricsMiddleware:
    """``http_requests_total`` and ``http_request_duration_seconds`` by method, route, status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        status = "500"
        try:
            response = self.get_response(request)
            status = str(response.status_code)
            return response
        finally:
            elapsed = time.perf_counter() - started
            labels = {"method": request.method or "", "route": route_of(request), "status": status}
            metrics.increment("http_requests_total", **labels)
            metrics.observe("http_request_duration_seconds", elapsed, **labels)


# ---- Celery ----------------------------------------------------------------

_task_started: dict[str, float] = {}
_task_lock = threading.Lock()


def _task_name(task: object, sender: object = None) -> str:
    return getattr(task, "name", None) or getattr(sender, "name", None) or "unknown"


@signals.task_prerun.connect
def _task_prerun(task_id: str | None = None, **kwargs: object) -> None:
    if task_id:
        with _task_lock:
            _task_started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_postrun(
    task_id: str | None = None, task: object = None, state: str | None = None, **kwargs: object
) -> None:
    with _task_lock:
        started = _task_started.pop(task_id or "", None)
    name = _task_name(task)
    if state is None:
        # An eager run that re-raised (task_eager_propagates): no task_failure is sent.
        state = "FAILURE"
        metrics.increment("celery_task_failures_total", task=name)
    metrics.increment("celery_tasks_total", task=name, state=state)
    if started is not None:
        metrics.observe("celery_task_runtime_seconds", time.perf_counter() - started, task=name)


@signals.task_failure.connect
def _task_failure(sender: object = None, **kwargs: object) -> None:
    metrics.increment("celery_task_failures_total", task=_task_name(sender))


@signals.task_retry.connect
def _task_retry(sender: object = None, **kwargs: object) -> None:
    metrics.increment("celery_task_retries_total", task=_task_name(sender))


@signals.worker_process_shutdown.connect
def _forget_dead_pool_process(pid: int | None = None, **kwargs: object) -> None:
    mark_process_dead(pid or os.getpid())


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges (multiprocess mode); counters stay counted."""
    if not metrics.multiprocess_dir():
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(metrics.process_identifier(pid))
    except OSError:
        logger.warning("metrics: could not mark process %s dead", pid, exc_info=True)
