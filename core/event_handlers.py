"""Outbox handlers owned by core: every event is logged (and counted) once delivered."""

import logging

from core import outbox
from core.models import OutboxEvent

logger = logging.getLogger("raffle.events")


@outbox.register(outbox.ALL_EVENTS, name="core.log_event")
def log_event(event: OutboxEvent) -> None:
    # Idempotent: a second delivery only logs the same line again.
    logger.info(
        "event %s #%s request_id=%s payload=%s",
        event.event_type,
        event.pk,
        event.request_id,
        event.payload,
    )
