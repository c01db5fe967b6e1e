"""Closing houses whose sales are over, and scheduling their draw."""

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.locks import lock_rows
from draws.models import Draw
from lottery.models import House
from lottery.services import change_house_status

logger = logging.getLogger(__name__)


def _due_q(now: datetime) -> Q:
    """Sales are over: the end date passed, or every ticket is sold."""
    return Q(status__in=(House.Status.ACTIVE, House.Status.PAUSED), deleted_at__isnull=True) & (
        Q(sales_end_at__lte=now) | Q(tickets_sold__gte=F("total_tickets"))
    )


def close_due_houses(*, now: datetime | None = None) -> list[int]:
    """Close every due house under its row lock and schedule its draw; returns their ids."""
    now = now or timezone.now()
    closed = []
    for house_id in House.objects.filter(_due_q(now)).values_list("pk", flat=True):
        with transaction.atomic():
            [locked] = lock_rows(
                House.objects.filter(_due_q(now), pk=house_id).values_list("pk", flat=True)
            )
            if not locked:
                continue  # another pass closed it, or staff changed it meanwhile
            change_house_status(house_id=house_id, to_status=House.Status.CLOSED)
            _schedule(house_id)
        logger.info("house %s closed", house_id)
        closed.append(house_id)
    return closed


def schedule_closed_houses() -> list[int]:
    """Houses closed some other way (staff) get their draw too; returns the house ids."""
    scheduled = []
    orphans = House.objects.filter(status=House.Status.CLOSED, draws__isnull=True).values_list(
        "pk", flat=True
    )
    for house_id in orphans:
        with transaction.atomic():
            [locked] = lock_rows(
                House.objects.filter(pk=house_id, status=House.Status.CLOSED).values_list(
                    "pk", flat=True
                )
            )
            if locked and _schedule(house_id):
                scheduled.append(house_id)
    return scheduled


def _schedule(house_id: int) -> bool:
    """Inside the transaction holding the house lock: one draw per house, once."""
    if Draw.objects.filter(house_id=house_id).exists():
        return False
    Draw.objects.create(house_id=house_id, status=Draw.Status.SCHEDULED)
    return True
