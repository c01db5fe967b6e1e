"""Thin Celery task for the draw job: one pass of ``draws.services.passes.run_due``."""

from celery import shared_task

from core.tasks import ReliableTask
from draws.services import passes


@shared_task(name="draws.run_due", base=ReliableTask, max_retries=2)
def run_due() -> dict[str, object]:
    return passes.run_due()
