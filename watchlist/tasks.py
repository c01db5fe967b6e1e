"""Thin Celery tasks for notifications: ids in, a service call, retry policy here."""

import logging
import time

from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from core.tasks import ReliableTask
from watchlist import notifications

logger = logging.getLogger(__name__)

SEND_MAX_RETRIES = 5


@shared_task(bind=True, name="notifications.send", base=ReliableTask, max_retries=SEND_MAX_RETRIES)
def send_notification(self: Task, delivery_id: int) -> str:
    try:
        return notifications.send_notification(delivery_id=delivery_id)
    except Exception:
        if (self.request.retries or 0) >= (self.max_retries or 0):
            notifications.give_up(delivery_id=delivery_id)  # ReliableTask writes the dead letter
        raise


# Late ack: a killed worker's batch runs again (rows it had claimed wait for the sweep).
# No retries of its own: a row that fails goes on alone, below.
@shared_task(name="notifications.send_batch", acks_late=True, reject_on_worker_lost=True)
def send_notification_batch(delivery_ids: list[int]) -> int:
    # Stop well inside the time limit even if every send times out; the rest go to a new batch.
    deadline = time.monotonic() + settings.CELERY_TASK_MAX_RUNTIME_SECONDS / 2
    outcome = notifications.send_notifications(delivery_ids=delivery_ids, deadline=deadline)
    for delivery_id in outcome.failed:
        retry_alone(delivery_id)
    notifications.enqueue_sends(outcome.untried)
    return len(delivery_ids) - len(outcome.failed) - len(outcome.untried)


def retry_alone(delivery_id: int) -> None:
    """A row whose send failed in a batch: its own ``notifications.send``, as its first retry.

    The batch was the first attempt, so the row gets the backoff and retry budget
    it would have had after failing in its own task: five retries, then a dead letter.
    """
    task = send_notification
    countdown = get_exponential_backoff_interval(
        factor=task.retry_backoff,
        retries=0,
        maximum=task.retry_backoff_max,
        full_jitter=task.retry_jitter,
    )
    try:
        task.apply_async(args=[delivery_id], retries=1, countdown=countdown)
    except Exception:  # broker down: send_stalled_notifications queues it later
        logger.warning("could not queue the retry of notification %s; the sweep will", delivery_id)


@shared_task(name="notifications.raise_closing_soon", base=ReliableTask, max_retries=2)
def raise_closing_soon_alerts() -> int:
    return notifications.raise_closing_soon_alerts()


@shared_task(name="notifications.send_stalled", base=ReliableTask, max_retries=2)
def send_stalled_notifications() -> int:
    return notifications.send_stalled_notifications()
