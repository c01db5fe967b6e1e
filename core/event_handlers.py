"""Outbox handlers owned by core: every delivered event is logged and counted in /metrics."""

import logging

from core import metrics, outbox
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


@outbox.register(outbox.ALL_EVENTS, name="core.count_event")
def count_event(event: OutboxEvent) -> None:
    # At least once: a redelivery after a crash may count an event twice.
    metrics.increment("domain_events_total", type=event.event_type)
