"""Outbox handlers owned by core: every delivered event is logged and counted in /metrics.

Both take the relay's whole batch at once (``batch=True``): they run for every
event, so a per-event call would be paid by every purchase.
"""

import logging
from collections import Counter

from core import metrics, outbox
from core.models import OutboxEvent

logger = logging.getLogger("raffle.events")


@outbox.register(outbox.ALL_EVENTS, name="core.log_event", batch=True)
def log_events(events: list[OutboxEvent]) -> None:
    # Idempotent: a second delivery only logs the same lines again.
    for event in events:
        logger.info(
            "event %s #%s request_id=%s payload=%s",
            event.event_type,
            event.pk,
            event.request_id,
            event.payload,
        )


@outbox.register(outbox.ALL_EVENTS, name="core.count_event", batch=True)
def count_events(events: list[OutboxEvent]) -> None:
    # At least once: a redelivery after a crash may count an event twice.
    for event_type, count in Counter(event.event_type for event in events).items():
        metrics.increment("domain_events_total", count, type=event_type)
