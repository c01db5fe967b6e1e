"""Thin Celery tasks for notifications: ids in, a service call, retry policy here."""

from celery import Task, shared_task

from core.tasks import ReliableTask
from watchlist import notifications

SEND_MAX_RETRIES = 5


@shared_task(bind=True, name="notifications.send", base=ReliableTask, max_retries=SEND_MAX_RETRIES)
def send_notification(self: Task, delivery_id: int) -> str:
    try:
        return notifications.send_notification(delivery_id=delivery_id)
    except Exception:
        if (self.request.retries or 0) >= (self.max_retries or 0):
            notifications.give_up(delivery_id=delivery_id)  # ReliableTask writes the dead letter
        raise


@shared_task(name="notifications.raise_closing_soon", base=ReliableTask, max_retries=2)
def raise_closing_soon_alerts() -> int:
    return notifications.raise_closing_soon_alerts()


@shared_task(name="notifications.send_stalled", base=ReliableTask, max_retries=2)
def send_stalled_notifications() -> int:
    return notifications.send_stalled_notifications()
