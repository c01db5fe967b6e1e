"""Thin Celery wrappers around core services, and the base class for reliable tasks."""

import logging
from typing import Any

from celery import Task, shared_task

from core import outbox, services
from core.health import record_beat_heartbeat

logger = logging.getLogger(__name__)


class ReliableTask(Task):
    """Retried with exponential backoff and full jitter; dead-lettered when it gives up.

    ``acks_late`` + ``reject_on_worker_lost``: a message is acknowledged only
    after the task finished, so a killed worker's task runs again. Tasks built
    on this class must therefore be idempotent.
    """

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (Exception,)
    max_retries = 5
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: object,
    ) -> None:
        retries = self.request.retries or 0
        will_retry = isinstance(exc, self.autoretry_for) and retries < (self.max_retries or 0)
        # An eager retry chain unwinds through every level; only the last one is final.
        if will_retry:
            return
        from core.dead_letters import record_dead_letter
        from core.request_context import get_request_id

        try:
            record_dead_letter(
                task_name=self.name,
                task_id=task_id,
                args=args,
                kwargs=kwargs,
                request_id=getattr(self.request, "request_id", None) or get_request_id(),
                exc=exc,
                retries=retries,
            )
        except Exception:  # the database itself is down: the log line is all we can keep
            logger.exception("could not write the dead letter for %s[%s]", self.name, task_id)


@shared_task(name="core.purge_expired_idempotency_keys")
def purge_expired_idempotency_keys() -> int:
    purged = services.purge_expired_idempotency_keys()
    logger.info("purged %d expired idempotency keys", purged)
    return purged


@shared_task(name="core.beat_heartbeat")
def beat_heartbeat() -> None:
    record_beat_heartbeat()


@shared_task(name="core.relay_outbox", base=ReliableTask, max_retries=3)
def relay_outbox() -> int:
    return outbox.relay_pending_events()
