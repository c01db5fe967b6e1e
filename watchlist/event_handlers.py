"""Outbox handlers of the watchlist app: the notification emails (watchlist.notifications).

Each handler only writes delivery rows (unique per event, recipient and kind)
and queues their sends, so running it twice for one event sends nothing twice.
"""

from core import outbox
from core.models import OutboxEvent
from watchlist import notifications
from watchlist.models import NotificationDelivery


@outbox.register("tickets.issued", name="watchlist.notify_purchase_completed")
def purchase_completed(event: OutboxEvent) -> None:
    notifications.notify_purchase_completed(event)


@outbox.register("tickets.issued", name="watchlist.raise_sold_out_alert")
def maybe_sold_out(event: OutboxEvent) -> None:
    notifications.raise_sold_out_alert(house_id=event.payload["house_id"])


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
