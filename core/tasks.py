"""Thin Celery wrappers around core services."""

import logging

from celery import shared_task

from core import services
from core.health import record_beat_heartbeat

logger = logging.getLogger(__name__)


@shared_task(name="core.purge_expired_idempotency_keys")
def purge_expired_idempotency_keys() -> int:
    purged = services.purge_expired_idempotency_keys()
    logger.info("purged %d expired idempotency keys", purged)
    return purged


@shared_task(name="core.beat_heartbeat")
def beat_heartbeat() -> None:
    record_beat_heartbeat()
