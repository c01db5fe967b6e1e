"""Thin Celery wrappers around reservation services."""

import logging

from celery import shared_task

from reservations import services

logger = logging.getLogger(__name__)


@shared_task(name="reservations.expire_reservations")
def expire_reservations() -> int:
    return services.expire_due_reservations()


@shared_task(name="reservations.sync_inventory")
def sync_inventory() -> int:
    drifts = services.sync_inventory()
    return 0 if drifts is None else len(drifts)
