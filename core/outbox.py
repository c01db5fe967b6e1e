"""Transactional outbox: domain events are rows written with the change they describe.

``emit()`` inserts an ``OutboxEvent`` inside the caller's transaction, so an event
exists if and only if its change committed. A relay delivers events to the
handlers registered for their type, at least once: right after the commit (a
task enqueued by ``on_commit``) and every 10 s from beat, which picks up
whatever the on-commit relay missed (broker down, worker crash). Relays claim
batches with ``skip_locked`` and a lease, so several can run at once; each
handler's success is recorded in ``OutboxDelivery`` and a handler is never
called again for an event it finished, but it may see an event twice after a
crash, so handlers must be idempotent.

A handler registered with ``batch=True`` takes a list: the relay calls it once
with every event of its batch that still needs it, so a burst of twenty
purchases costs it one set of statements, not twenty. If that call raises, the
relay calls it again event by event, so one poisoned event is retried alone.
"""

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from core import shutdown
from core.models import OutboxDelivery, OutboxEvent
from core.request_context import get_request_id

logger = logging.getLogger(__name__)

Handler = Callable[[OutboxEvent], None]
BatchHandler = Callable[[list[OutboxEvent]], None]
AnyHandler = TypeVar("AnyHandler", Handler, BatchHandler)
ALL_EVENTS = "*"
# How long a claimed event is reserved for the relay that claimed it.
CLAIM_LEASE = timedelta(seconds=60)
MAX_RETRY_DELAY_SECONDS = 3600
RELAY_QUEUED_KEY = "outbox:relay-queued"
RELAY_QUEUED_TTL = 30  # a lost relay task only delays delivery until beat's next run
RELAY_BATCH_SIZE = 100
RELAY_MAX_BATCHES = 50  # 5,000 events per run (every 10 s and on commit); the rest next run


@dataclass(frozen=True)
class _Registration:
    name: str
    handler: Handler | BatchHandler
    batch: bool


_registry: dict[str, list[_Registration]] = {}
_discovered = False


def register(
    event_type: str, *, name: str | None = None, batch: bool = False
) -> Callable[[AnyHandler], AnyHandler]:
    """Decorator: deliver ``event_type`` events (``"*"`` for all) to the function.

    With ``batch=True`` the function takes a list of events (every event of the
    relay batch it has not finished yet) instead of one. The name identifies the
    handler in ``OutboxDelivery``; keep it stable.
    """

    def decorator(handler: AnyHandler) -> AnyHandler:
        handler_name = name or f"{handler.__module__}.{handler.__qualname__}"
        registrations = _registry.setdefault(event_type, [])
        if all(r.name != handler_name for r in registrations):
            registrations.append(_Registration(handler_name, handler, batch))
        return handler

    return decorator


def handlers_for(event_type: str) -> list[_Registration]:
    global _discovered
    if not _discovered:
        # Each app declares its handlers in ``<app>/event_handlers.py``.
        autodiscover_modules("event_handlers")
        _discovered = True
    return [*_registry.get(event_type, []), *_registry.get(ALL_EVENTS, [])]


def emit(event_type: str, payload: dict[str, Any]) -> OutboxEvent:
    """Record a domain event in the current transaction; relayed once it commits."""
    [event] = emit_many([(event_type, payload)])
    return event


def emit_many(events: list[tuple[str, dict[str, Any]]]) -> list[OutboxEvent]:
    """Record several ``(event_type, payload)`` events in one INSERT (a batch of purchases)."""
    if not connection.in_atomic_block:
        # Outside a transaction the event could outlive a change that failed.
        raise RuntimeError("outbox.emit() must run inside the transaction that makes the change")
    if not events:
        return []
    request_id = get_request_id() or ""
    created = OutboxEvent.objects.bulk_create(
        OutboxEvent(event_type=event_type, payload=payload, request_id=request_id)
        for event_type, payload in events
    )
    _relay_after_commit()
    return created


def _relay_after_commit() -> None:
    # One relay task per transaction is enough however many events it emitted.
    pending = getattr(connection, "run_on_commit", [])
    if any(entry[1] is _enqueue_relay for entry in pending):
        return
    transaction.on_commit(_enqueue_relay, robust=True)


def _enqueue_relay() -> None:
    # Coalesce: while a relay is queued and has not started claiming, the events
    # committed meanwhile are claimed by it, so no second task is needed. The
    # relay clears the flag before it claims (see relay_pending_events).
    try:
        if not cache.add(RELAY_QUEUED_KEY, 1, timeout=RELAY_QUEUED_TTL):
            return
    except Exception:  # cache down: enqueue anyway, an extra relay is harmless
        logger.warning("relay coalescing unavailable; enqueuing a relay")
    from core.tasks import relay_outbox

    try:
        relay_outbox.delay()
    except Exception:  # broker down: the beat relay delivers within 10 s of its return
        _clear_relay_flag()
        logger.warning("could not enqueue the outbox relay; beat will pick the events up")


def _clear_relay_flag() -> None:
    try:
        cache.delete(RELAY_QUEUED_KEY)
    except Exception:  # the flag expires on its own
        logger.warning("could not clear the outbox relay flag")


def relay_pending_events(
    *, batch_size: int = RELAY_BATCH_SIZE, max_batches: int = RELAY_MAX_BATCHES
) -> int:
    """Deliver due events in claimed batches; returns how many were fully delivered."""
    _clear_relay_flag()
    delivered = 0
    for _ in shutdown.batches("relay_outbox", max_batches=max_batches):
        events = _claim_batch(batch_size)
        if events:
            delivered += deliver_batch(events)
        if len(events) < batch_size:
            return delivered
    return delivered


def _claim_batch(batch_size: int) -> list[OutboxEvent]:
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(delivered_at__isnull=True, available_at__lte=now)
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return []
        OutboxEvent.objects.filter(id__in=ids).update(
            available_at=now + CLAIM_LEASE, attempts=F("attempts") + 1
        )
    return list(OutboxEvent.objects.filter(id__in=ids).order_by("id"))


def deliver_batch(events: list[OutboxEvent]) -> int:
    """Run every handler that has not yet finished each event; returns how many finished.

    A few statements per batch, not per event: the relay keeps up with checkout bursts.
    """
    done: set[tuple[int, str]] = set(
        OutboxDelivery.objects.filter(event__in=events).values_list("event_id", "handler")
    )
    # Each handler with the events it still owes, in event order, each event once.
    owed: dict[_Registration, list[OutboxEvent]] = {}
    for event in events:
        for registration in handlers_for(event.event_type):
            if (event.pk, registration.name) not in done:
                done.add((event.pk, registration.name))
                owed.setdefault(registration, []).append(event)
    finished: list[OutboxDelivery] = []
    failed: dict[int, list[str]] = {}
    for registration, its_events in owed.items():
        errors = _run_handler(registration, its_events)
        for event in its_events:
            if event.pk in errors:
                failed.setdefault(event.pk, []).append(errors[event.pk])
            else:
                finished.append(OutboxDelivery(event=event, handler=registration.name))
    # Another relay may have finished the same handler after our lease expired.
    OutboxDelivery.objects.bulk_create(finished, ignore_conflicts=True)
    now = timezone.now()
    for event in events:
        if event.pk in failed:
            delay = min(MAX_RETRY_DELAY_SECONDS, 2**event.attempts) * random.uniform(0.5, 1.0)
            OutboxEvent.objects.filter(pk=event.pk).update(
                last_error="\n".join(failed[event.pk])[:4000],
                available_at=now + timedelta(seconds=delay),
            )
    delivered = [event.pk for event in events if event.pk not in failed]
    OutboxEvent.objects.filter(pk__in=delivered).update(delivered_at=now, last_error="")
    return len(delivered)


def _run_handler(registration: _Registration, events: list[OutboxEvent]) -> dict[int, str]:
    """Hand ``events`` to one handler; returns the error of each event it failed on."""
    if registration.batch and len(events) > 1:
        try:
            registration.handler(events)
        except Exception:
            logger.warning(
                "outbox batch handler %s failed on %s events; retrying them one by one",
                registration.name,
                len(events),
                exc_info=True,
            )
        else:
            return {}
    errors: dict[int, str] = {}
    for event in events:
        try:
            registration.handler([event] if registration.batch else event)
        except Exception as exc:  # one failing event or handler must not block the others
            logger.exception("outbox handler %s failed on event %s", registration.name, event.pk)
            errors[event.pk] = f"{registration.name}: {type(exc).__name__}: {exc}"
    return errors


def deliver(event: OutboxEvent) -> bool:
    """Deliver one event now (staff tools, tests); True when every handler finished it."""
    return deliver_batch([event]) == 1
