"""Thin Celery tasks for checkout and refunds: ids in, a service call, retry policy here."""

import uuid

from celery import shared_task

from core.tasks import ReliableTask
from purchases.services import checkout, refunds


@shared_task(name="checkout.process", base=ReliableTask, max_retries=5)
def process_checkout(reservation_id: str) -> str:
    return checkout.process_checkout(reservation_id=uuid.UUID(reservation_id))


@shared_task(name="refunds.attempt", base=ReliableTask, max_retries=3)
def attempt_refund(refund_id: int) -> str:
    return refunds.attempt_refund(refund_id=refund_id)


@shared_task(name="refunds.retry_due", base=ReliableTask, max_retries=2)
def retry_refunds() -> int:
    return refunds.retry_due_refunds()


@shared_task(name="checkout.requeue_stranded", base=ReliableTask, max_retries=2)
def requeue_stranded_checkouts() -> int:
    return checkout.requeue_stranded_checkouts()


@shared_task(name="checkout.recover_stuck", base=ReliableTask, max_retries=2)
def recover_stuck_checkouts() -> dict[str, int]:
    return checkout.recover_stuck_checkouts()
