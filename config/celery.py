"""The Celery app: Redis broker, late acks, JSON only, database beat schedule."""

import logging
import os
from queue import Empty
from urllib.parse import urlparse

from celery import Celery, bootsteps, signals
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)


class RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, whose ``close()`` survives a dead BRPOP connection.

    kombu 5.7.0 starts ``Channel.close()`` by reading the reply of a pending
    BRPOP and only catches ``Empty``. When the broker has just gone away, that
    read raises ``ConnectionError`` and the close stops half-way: the channel
    is not marked closed and its unacknowledged (late-ack) messages are left
    on it. ``Connection.collect()`` then detaches the transport
    (``transport.client = None``) and Celery 5.7's consumer closes the same
    default channel again; restoring the unacked messages rebuilds a pool
    from ``transport.client.hostname`` and the worker dies with
    ``AttributeError: 'NoneType' object has no attribute 'hostname'``
    (docs/operations.md, "Broker restarts").
    """

    def close(self) -> None:
        if self._in_poll and not self.closed:
            try:
                self._brpop_read()
            except Empty:
                pass
            except self.connection_errors:
                # The reply died with the connection; closing must go on.
                logger.debug("pending BRPOP lost while closing the channel", exc_info=True)
        super().close()


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel


def broker_transport(broker_url: str | None) -> str | None:
    """Our Redis transport for ``redis://`` brokers (``rediss://`` keeps kombu's, for its TLS).

    Named by import path, so the worker logs ``Connected to config.celery:RedisTransport://...``.
    """
    if broker_url and urlparse(broker_url).scheme == "redis":
        return f"{__name__}:RedisTransport"
    return None


import core.shutdown  # noqa: E402, F401  (maps its shared flag before the pool forks)

app = Celery("raffle")
app.config_from_object("django.conf:settings", namespace="CELERY")


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Writes the worker heartbeat for /health/ready while the consumer consumes.

    A consumer step: it starts after the task consumer and stops when the
    connection to the broker is lost, so a dead, stuck or disconnected worker
    goes ``stale`` after ``WORKER_HEARTBEAT_MAX_AGE_SECONDS``.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: object, **kwargs: object) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entry = None

    def start(self, consumer: object) -> None:
        from core.health import WORKER_HEARTBEAT_INTERVAL_SECONDS

        _beat_safely()
        self.timer_entry = consumer.timer.call_repeatedly(
            WORKER_HEARTBEAT_INTERVAL_SECONDS, _beat_safely
        )

    def stop(self, consumer: object) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    shutdown = stop


def _beat_safely() -> None:
    from core.health import record_worker_heartbeat
    from core.ratelimit import CACHE_ERRORS

    try:
        record_worker_heartbeat()
    except CACHE_ERRORS:  # Redis down: readiness shows the heartbeat ageing
        logger.warning("could not record the worker heartbeat", exc_info=True)


app.steps["consumer"].add(WorkerHeartbeat)

# Celery's Django fixup still closes the connections every this many tasks.
DB_REUSE_MAX_TASKS = 1000


@app.on_after_configure.connect
def _configure_reliability(sender: Celery, **kwargs: object) -> None:
    from django.conf import settings

    max_runtime = settings.CELERY_TASK_MAX_RUNTIME_SECONDS
    sender.conf.update(
        # A task is acknowledged only after it finished, and re-queued when the
        # worker process dies, so a crash never loses work.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message reserved per pool process: with late acks a prefetched message
        # would wait behind a long task (a relay, a draw) while another process idles.
        # Checkout throughput comes from batching instead (one task charges and issues
        # the queued checkouts of its house): with it, WORKER_CONCURRENCY=2 on two cores
        # picks a checkout up in ~40 ms and 4 processes gain nothing (docs/benchmarks.md,
        # issue 12).
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_soft_time_limit=max_runtime,
        task_time_limit=max_runtime + 30,
        # Redelivery of unacked messages must wait longer than the longest task.
        # Sweep for such messages every 10 s (kombu's default scans every 10th sweep,
        # so a whole worker SIGKILLed waited up to 100 s past the timeout).
        broker_transport_options={
            "visibility_timeout": max_runtime * 4,
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        broker_transport=broker_transport(settings.CELERY_BROKER_URL),
        task_ignore_result=True,
        beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
        worker_hijack_root_logger=False,
        task_eager_propagates=True,
        timezone="UTC",
    )
    # Celery's Django fixup closes the database connections around every task unless
    # told to reuse them: a new PostgreSQL backend (fork, authentication, session set-up)
    # per task, ~0.3 per purchase under the checkout benchmark. Reused instead, and
    # replaced before a task when it failed or outlived CONN_MAX_AGE (_reuse_connection).
    sender.conf["CELERY_DB_REUSE_MAX"] = DB_REUSE_MAX_TASKS


app.autodiscover_tasks()


@signals.worker_init.connect
def _refuse_bad_configuration(**kwargs: object) -> None:
    from core.checks import raise_on_configuration_errors

    raise_on_configuration_errors()


# Carry the HTTP request id into every task message and back into the logs.
@signals.before_task_publish.connect
def _attach_request_id(headers: dict | None = None, **kwargs: object) -> None:
    from core.request_context import get_request_id

    request_id = get_request_id()
    if headers is not None and request_id and "request_id" not in headers:
        headers["request_id"] = request_id


@signals.task_prerun.connect
def _bind_request_id(task: object = None, **kwargs: object) -> None:
    from core.request_context import bind_request_id, new_request_id

    request = getattr(task, "request", None)
    if getattr(request, "is_eager", False):
        return  # runs inside the caller, which already has its request id
    bind_request_id(getattr(request, "request_id", None) or new_request_id())


@signals.task_prerun.connect
def _reuse_connection(task: object = None, **kwargs: object) -> None:
    """What Django does before each request: drop a connection that failed or aged, and
    check a kept one (CONN_HEALTH_CHECKS) when the task first uses it."""
    if getattr(getattr(task, "request", None), "is_eager", False):
        return  # runs inside the caller's request or transaction
    from django.db import close_old_connections

    close_old_connections()


@signals.task_postrun.connect
def _unbind_request_id(task: object = None, **kwargs: object) -> None:
    from core.request_context import bind_request_id

    if not getattr(getattr(task, "request", None), "is_eager", False):
        bind_request_id(None)
