"""Notification emails from outbox events, sent exactly once per (event, recipient, kind).

An event handler (``watchlist/event_handlers.py``) decides who hears about an
event and writes one ``NotificationDelivery`` row per recipient, unique per
(event, recipient, kind), *before* anything is sent: a relay that hands the same
event over twice finds the rows and adds none. The rows one handler call wrote
are sent by one task (``notifications.send_batch``), which sends each row as
``send_notification`` does: claim it with a conditional update, send through
Django's email backend, mark it ``sent``. A row whose send fails continues alone
on its own task (``notifications.send``, a ``ReliableTask``), retried with
backoff; after the last retry the row is ``failed`` and the task is a dead
letter that staff can replay. Rows whose task was never queued (broker down) or
whose worker died mid-send are handed out again by ``send_stalled_notifications``
(beat, every 5 minutes).

The ``tickets.issued`` handlers take the relay's whole batch: a checkout burst
of twenty purchases costs the same few statements as one.

Draws are known here only through their events' payloads (this app may not
import ``draws``).
"""

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from core import failpoints, metrics, outbox
from core.models import OutboxEvent
from lottery.models import House
from purchases.models import Ticket
from reservations.models import Reservation
from watchlist import selectors
from watchlist.models import HouseAlert, NotificationDelivery

logger = logging.getLogger(__name__)

User = get_user_model()
Kind = NotificationDelivery.Kind
Status = NotificationDelivery.Status

HOUSE_CLOSING_SOON_EVENT = "house.closing_soon"
HOUSE_SOLD_OUT_EVENT = "house.sold_out"
CLOSING_SOON_WINDOW = timedelta(hours=24)
ALERT_BATCH_SIZE = 500
STALLED_BATCH_SIZE = 500
# Rows per send task: a burst is one task, a broadcast to thousands several (shared by workers).
SEND_BATCH_SIZE = 100

SUBJECTS: dict[str, str] = {
    Kind.HOUSE_CLOSING_SOON: "Last day: {house_title} closes soon",
    Kind.HOUSE_SOLD_OUT: "{house_title} is sold out",
    Kind.HOUSE_DRAWN: "{house_title} has been drawn",
    Kind.HOUSE_CANCELLED: "{house_title} has been cancelled",
    Kind.PURCHASE_COMPLETED: "Your tickets for {house_title}",
    Kind.PURCHASE_REFUNDED: "Your refund for {house_title}",
    Kind.DRAW_WON: "You won {house_title}!",
}


# --- Who hears about what -------------------------------------------------------


def house_contexts(house_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The house part of an email's context for each id, in one read (unknown ids too)."""
    wanted = set(house_ids)
    houses = {
        house["pk"]: house
        for house in House.objects.filter(pk__in=wanted).values(
            "pk", "title", "city", "sales_end_at"
        )
    }
    contexts: dict[int, dict[str, Any]] = {}
    for house_id in wanted:
        house = houses.get(house_id)
        if house is None:
            contexts[house_id] = {
                "house_id": house_id,
                "house_title": f"House {house_id}",
                "house_city": "",
            }
            continue
        sales_end_at = house["sales_end_at"]
        contexts[house_id] = {
            "house_id": house_id,
            "house_title": house["title"],
            "house_city": house["city"],
            "sales_end_at": sales_end_at.isoformat() if sales_end_at else None,
        }
    return contexts


def house_context(house_id: int) -> dict[str, Any]:
    return house_contexts([house_id])[house_id]


def ticket_holder_ids(house_id: int, *, active_only: bool) -> list[int]:
    tickets = Ticket.objects.filter(house_id=house_id)
    if active_only:
        tickets = tickets.filter(status=Ticket.Status.ACTIVE)
    return list(tickets.order_by().values_list("owner_id", flat=True).distinct())


def notify_purchases_completed(events: list[OutboxEvent]) -> int:
    """``tickets.issued``: each buyer gets their ticket numbers.

    One read of the prices, one of the houses and one of the recipients for
    the whole batch, however many purchases it holds.
    """
    payloads = {event.pk: event.payload for event in events}
    prices = selectors.reservation_prices([p["reservation_id"] for p in payloads.values()])
    houses = house_contexts(p["house_id"] for p in payloads.values())
    contexts_by_event: dict[int, dict[int, dict[str, Any]]] = {}
    for event_id, payload in payloads.items():
        price = prices.get(str(payload["reservation_id"]))
        contexts_by_event[event_id] = {
            payload["user_id"]: {
                **houses[payload["house_id"]],
                "ticket_numbers": payload["ticket_numbers"],
                "reservation_id": str(payload["reservation_id"]),
                "total_price": str(price["total_price"]) if price else "",
                "currency": price["currency"] if price else "",
            }
        }
    return record_deliveries_of_events(
        kind=Kind.PURCHASE_COMPLETED, contexts_by_event=contexts_by_event
    )


def notify_purchase_refunded(event: OutboxEvent) -> int:
    """``refund.succeeded``: the buyer hears the money is back."""
    payload = event.payload
    reservation = (
        Reservation.objects.filter(pk=payload["reservation_id"])
        .values("user_id", "house_id", "currency")
        .first()
    )
    if reservation is None:
        logger.warning("refund %s: reservation not found; nobody notified", payload["refund_id"])
        return 0
    context = {
        **house_context(reservation["house_id"]),
        "amount": str(payload["amount"]),
        "currency": reservation["currency"],
        "reservation_id": str(payload["reservation_id"]),
    }
    return record_deliveries(
        event=event, kind=Kind.PURCHASE_REFUNDED, contexts={reservation["user_id"]: context}
    )


def notify_house_cancelled(event: OutboxEvent) -> int:
    """``lottery.cancelled``: watchers and ticket holders (whose refunds follow)."""
    house_id = event.payload["house_id"]
    context = house_context(house_id)
    holders = set(ticket_holder_ids(house_id, active_only=False))
    recipients = holders | set(selectors.watcher_ids(house_id))
    return record_deliveries(
        event=event,
        kind=Kind.HOUSE_CANCELLED,
        contexts={
            user_id: {**context, "holds_tickets": user_id in holders} for user_id in recipients
        },
    )


def notify_draw_completed(event: OutboxEvent) -> int:
    """``draw.completed``: the winner hears they won; watchers and other holders the result."""
    payload = event.payload
    house_id = payload["house_id"]
    number = payload.get("winning_ticket_number")
    winner_id = payload.get("winner_user_id")
    if winner_id is None and number is not None:
        winner_id = (
            Ticket.objects.filter(house_id=house_id, ticket_number=number)
            .values_list("owner_id", flat=True)
            .first()
        )
    context = {
        **house_context(house_id),
        "winning_ticket_number": number,
        "draw_id": payload.get("draw_id"),
        "is_redraw": payload.get("supersedes_draw_id") is not None,
    }
    sent = 0
    if winner_id is not None:
        sent += record_deliveries(event=event, kind=Kind.DRAW_WON, contexts={winner_id: context})
    others = set(ticket_holder_ids(house_id, active_only=True)) | set(
        selectors.watcher_ids(house_id)
    )
    others.discard(winner_id)
    sent += record_deliveries(
        event=event, kind=Kind.HOUSE_DRAWN, contexts=dict.fromkeys(others, context)
    )
    return sent


def notify_watchers(event: OutboxEvent, kind: str) -> int:
    """``house.closing_soon`` / ``house.sold_out`` (raised here, once per house)."""
    house_id = event.payload["house_id"]
    context = house_context(house_id)
    return record_deliveries(
        event=event, kind=kind, contexts=dict.fromkeys(selectors.watcher_ids(house_id), context)
    )


# --- House alerts: events nobody else emits, raised once per house ----------------


def raise_house_alert(*, house_id: int, kind: str, event_type: str) -> bool:
    """Record the alert and emit its event in one transaction; False if it was raised before."""
    with transaction.atomic():
        _, created = HouseAlert.objects.get_or_create(house_id=house_id, kind=kind)
        if created:
            outbox.emit(event_type, {"house_id": house_id})
    return created


def raise_sold_out_alerts(*, house_ids: Iterable[int]) -> int:
    """After tickets are issued: each house with every ticket sold tells its watchers, once.

    One read for all the houses of a relay batch; returns how many alerts this call raised.
    """
    sold_out = list(
        House.objects.filter(
            pk__in=set(house_ids), tickets_sold__gte=F("total_tickets"), deleted_at__isnull=True
        )
        .exclude(alerts__kind=HouseAlert.Kind.SOLD_OUT)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return sum(
        raise_house_alert(
            house_id=house_id, kind=HouseAlert.Kind.SOLD_OUT, event_type=HOUSE_SOLD_OUT_EVENT
        )
        for house_id in sold_out
    )


def raise_closing_soon_alerts(*, batch_size: int = ALERT_BATCH_SIZE) -> int:
    """Beat: every house on sale whose sales end within 24 h (and not sold out), once each."""
    now = timezone.now()
    house_ids = list(
        selectors.houses_closing_between(now, now + CLOSING_SOON_WINDOW)
        .filter(tickets_sold__lt=F("total_tickets"))
        .exclude(alerts__kind=HouseAlert.Kind.CLOSING_SOON)
        .order_by("sales_end_at", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    raised = sum(
        raise_house_alert(
            house_id=house_id,
            kind=HouseAlert.Kind.CLOSING_SOON,
            event_type=HOUSE_CLOSING_SOON_EVENT,
        )
        for house_id in house_ids
    )
    if raised:
        logger.info("%s house(s) close within 24 h; watchers will be told", raised)
    return raised


# --- Delivery records, written before anything is sent ----------------------------


def record_deliveries(*, event: OutboxEvent, kind: str, contexts: dict[int, dict[str, Any]]) -> int:
    """One event's rows: ``contexts`` maps each recipient to their email's context."""
    return record_deliveries_of_events(kind=kind, contexts_by_event={event.pk: contexts})


def record_deliveries_of_events(
    *, kind: str, contexts_by_event: dict[int, dict[int, dict[str, Any]]]
) -> int:
    """One row per (event, opted-in recipient with an email address); sends queued on commit.

    Returns how many rows this call added. Rows of these events and this kind
    still ``pending`` (a redelivered event whose tasks never got queued) are
    queued again: the send claims each row, so an extra task never sends twice.
    A constant number of statements for any number of events.
    """
    user_ids = {user_id for contexts in contexts_by_event.values() for user_id in contexts}
    emails = dict(
        User.objects.filter(pk__in=user_ids, is_active=True)
        .exclude(email="")
        .exclude(player_profile__notifications_enabled=False)
        .values_list("pk", "email")
    )
    rows = [
        NotificationDelivery(
            event_id=event_id,
            recipient_id=user_id,
            kind=kind,
            email=emails[user_id],
            context=context,
        )
        for event_id, contexts in contexts_by_event.items()
        for user_id, context in contexts.items()
        if user_id in emails
    ]
    of_events = NotificationDelivery.objects.filter(event_id__in=list(contexts_by_event), kind=kind)
    with transaction.atomic():
        before = of_events.count()
        NotificationDelivery.objects.bulk_create(rows, ignore_conflicts=True)
        statuses = list(of_events.order_by("pk").values_list("pk", "status"))
        pending = [pk for pk, status in statuses if status == Status.PENDING]
        transaction.on_commit(lambda: enqueue_sends(pending), robust=True)
    return len(statuses) - before


def enqueue_sends(delivery_ids: Iterable[int]) -> None:
    """Queue the sends of these rows: one ``notifications.send_batch`` task per chunk."""
    from watchlist.tasks import send_notification_batch  # tasks.py imports this module

    ids = list(delivery_ids)
    for start in range(0, len(ids), SEND_BATCH_SIZE):
        chunk = ids[start : start + SEND_BATCH_SIZE]
        try:
            send_notification_batch.delay(chunk)
        except Exception:  # broker down: send_stalled_notifications queues them later
            logger.warning("could not queue %s notification(s); the sweep will", len(chunk))


# --- Sending ----------------------------------------------------------------------


def _claim_lease() -> timedelta:
    return timedelta(seconds=settings.NOTIFICATION_STALLED_AFTER_SECONDS)


def send_notification(*, delivery_id: int) -> str:
    """Send one delivery if nobody else has or is; raises when the mail server fails.

    The claim is a conditional update (pending or failed, or a send abandoned
    longer than the lease ago), so duplicate tasks and replays send at most once.
    """
    now = timezone.now()
    claimable = Q(status__in=[Status.PENDING, Status.FAILED]) | Q(
        status=Status.SENDING, claimed_at__lt=now - _claim_lease()
    )
    claimed = NotificationDelivery.objects.filter(claimable, pk=delivery_id).update(
        status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
    )
    if not claimed:
        status = (
            NotificationDelivery.objects.filter(pk=delivery_id)
            .values_list("status", flat=True)
            .first()
        )
        return status or "missing"
    failpoints.hit("notifications.claimed")  # crash tests: a worker dies mid-send
    delivery = NotificationDelivery.objects.get(pk=delivery_id)
    try:
        build_message(delivery).send(fail_silently=False)
    except Exception as exc:
        NotificationDelivery.objects.filter(pk=delivery_id, status=Status.SENDING).update(
            status=Status.PENDING,
            last_error=f"{type(exc).__name__}: {exc}"[:4000],
            updated_at=timezone.now(),
        )
        metrics.increment("notifications_send_errors_total", kind=delivery.kind)
        raise
    sent_at = timezone.now()
    NotificationDelivery.objects.filter(pk=delivery_id, status=Status.SENDING).update(
        status=Status.SENT, sent_at=sent_at, last_error="", updated_at=sent_at
    )
    metrics.increment("notifications_sent_total", kind=delivery.kind)
    return Status.SENT


@dataclass(frozen=True)
class BatchOutcome:
    failed: list[int]  # tried and failed: each goes on alone, with its own retries
    untried: list[int]  # the deadline came before their turn


def send_notifications(*, delivery_ids: list[int], deadline: float | None = None) -> BatchOutcome:
    """Send each row as ``send_notification`` does, until ``deadline`` (``time.monotonic()``).

    A failing row does not hold back the rest of the batch; the caller hands it
    to its own retries, and gives the rows left untried to a new batch.
    """
    failed: list[int] = []
    for index, delivery_id in enumerate(delivery_ids):
        # The first row is always tried, so a batch handed on always gets shorter.
        if index and deadline is not None and time.monotonic() >= deadline:
            return BatchOutcome(failed=failed, untried=delivery_ids[index:])
        try:
            send_notification(delivery_id=delivery_id)
        except Exception:
            logger.warning("notification %s failed; it is retried on its own", delivery_id)
            failed.append(delivery_id)
    return BatchOutcome(failed=failed, untried=[])


def give_up(*, delivery_id: int) -> None:
    """The last retry failed: the row is ``failed`` (its dead letter can replay it)."""
    NotificationDelivery.objects.filter(
        pk=delivery_id, status__in=[Status.PENDING, Status.SENDING]
    ).update(status=Status.FAILED, updated_at=timezone.now())
    logger.error("notification %s failed for good; see its dead letter", delivery_id)


def delivery_settled_reason(args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """Dead-letter resolver of ``notifications.send``: done once the email went out."""
    delivery_id = kwargs.get("delivery_id", args[0] if args else None)
    status = (
        NotificationDelivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first()
    )
    if status == Status.SENT:
        return f"notification {delivery_id} was sent"
    if status is None:
        return f"notification {delivery_id} no longer exists"
    return None


def send_stalled_notifications(*, batch_size: int = STALLED_BATCH_SIZE) -> int:
    """Beat: queue rows left pending or sending for longer than the lease (lost tasks)."""
    stale = timezone.now() - _claim_lease()
    ids = list(
        NotificationDelivery.objects.filter(
            Q(status=Status.PENDING, updated_at__lt=stale)
            | Q(status=Status.SENDING, claimed_at__lt=stale)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    if ids:
        # Touch them so the next sweep leaves them to the tasks queued now.
        NotificationDelivery.objects.filter(pk__in=ids, status=Status.PENDING).update(
            updated_at=timezone.now()
        )
        enqueue_sends(ids)
        logger.info("queued %s stalled notification(s) again", len(ids))
    return len(ids)


def build_message(delivery: NotificationDelivery) -> EmailMultiAlternatives:
    context = {**delivery.context, "kind": delivery.kind}
    template = f"emails/{delivery.kind}"
    message = EmailMultiAlternatives(
        subject=SUBJECTS[delivery.kind].format(**{"house_title": "", **delivery.context}),
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.email],
        headers={"X-Notification-Id": str(delivery.pk)},
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message
