"""Outbox handlers of the watchlist app: the notification emails (watchlist.notifications).

Each handler only writes delivery rows (unique per event, recipient and kind)
and queues their sends, so running it twice for one event sends nothing twice.
The ``tickets.issued`` handlers are batch handlers (``core.outbox.register``):
one call for every purchase of a relay batch.
"""

from core import outbox
from core.models import OutboxEvent
from watchlist import notifications
from watchlist.models import NotificationDelivery


# Every purchase raises tickets.issued, so these two take the relay's whole batch at once.
@outbox.register("tickets.issued", name="watchlist.notify_purchase_completed", batch=True)
def purchases_completed(events: list[OutboxEvent]) -> None:
    notifications.notify_purchases_completed(events)


@outbox.register("tickets.issued", name="watchlist.raise_sold_out_alert", batch=True)
def maybe_sold_out(events: list[OutboxEvent]) -> None:
    notifications.raise_sold_out_alerts(house_ids=[event.payload["house_id"] for event in events])


@outbox.register("refund.succeeded", name="watchlist.notify_purchase_refunded")
def purchase_refunded(event: OutboxEvent) -> None:
    notifications.notify_purchase_refunded(event)


@outbox.register("lottery.cancelled", name="watchlist.notify_house_cancelled")
def house_cancelled(event: OutboxEvent) -> None:
    notifications.notify_house_cancelled(event)


@outbox.register("draw.completed", name="watchlist.notify_draw_completed")
def draw_completed(event: OutboxEvent) -> None:
    notifications.notify_draw_completed(event)


@outbox.register(notifications.HOUSE_CLOSING_SOON_EVENT, name="watchlist.notify_closing_soon")
def house_closing_soon(event: OutboxEvent) -> None:
    notifications.notify_watchers(event, NotificationDelivery.Kind.HOUSE_CLOSING_SOON)


@outbox.register(notifications.HOUSE_SOLD_OUT_EVENT, name="watchlist.notify_sold_out")
def house_sold_out(event: OutboxEvent) -> None:
    notifications.notify_watchers(event, NotificationDelivery.Kind.HOUSE_SOLD_OUT)
