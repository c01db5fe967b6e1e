"""Cancelling a lottery: the house is ``cancelled`` and every completed purchase refunded.

The cancellation itself is one transaction under the house lock; the refunds are
opened afterwards, one purchase per transaction, through ``purchases``' refund
service, and every pass opens the ones still missing (a crash mid-way loses
none). A refund failing at the gateway is retried by the refund job until it
succeeds or lands in ``needs_attention`` for staff: never forgotten.
"""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet

from core import exceptions as domain
from core import metrics, outbox
from core.audit import log_action
from core.locks import lock_rows
from draws.models import Draw
from lottery.models import House
from lottery.services import change_house_status
from purchases.services.refunds import refund_purchase
from reservations.models import Reservation

logger = logging.getLogger(__name__)

LOTTERY_CANCELLED_REFUND_REASON = "lottery_cancelled"
REFUND_BATCH_SIZE = 500


def cancel_lottery(*, house: House, reason: str, actor: AbstractBaseUser | None = None) -> None:
    """Inside the caller's transaction, with the house row locked."""
    change_house_status(house_id=house.pk, to_status=House.Status.CANCELLED)
    # A cancelled house has no draw (DRAWS.md section 5): only an unfrozen one can go.
    Draw.objects.filter(house_id=house.pk, status=Draw.Status.SCHEDULED).delete()
    outbox.emit(
        "lottery.cancelled",
        {
            "house_id": house.pk,
            "reason": reason,
            "tickets_sold": house.tickets_sold,
            "total_tickets": house.total_tickets,
            "min_participation_percent": house.min_participation_percent,
            "cancelled_by": actor.pk if actor is not None else None,
        },
    )
    metrics.increment("lotteries_cancelled_total", reason=reason)
    logger.info("lottery of house %s cancelled: %s", house.pk, reason)
    transaction.on_commit(lambda: refund_cancelled_purchases(house_id=house.pk), robust=True)


def cancel_lottery_by_staff(*, house_id: int, actor: AbstractBaseUser, reason: str) -> House:
    """Staff cancel a lottery that cannot be drawn (e.g. flagged: no commitment)."""
    if not reason.strip():
        raise domain.ValidationFailed(
            [
                {
                    "field": "reason",
                    "code": "required",
                    "message": "Say why the lottery is cancelled.",
                }
            ]
        )
    with transaction.atomic():
        [houses] = lock_rows(House.objects.filter(pk=house_id))
        if not houses:
            raise domain.NotFound()
        house = houses[0]
        if Draw.objects.filter(house_id=house_id).exclude(status=Draw.Status.SCHEDULED).exists():
            raise domain.InvalidState("This house's ticket list is frozen: its draw goes ahead.")
        cancel_lottery(house=house, reason=f"staff: {reason.strip()}", actor=actor)
        log_action(
            actor=actor,
            action="lottery_cancelled",
            obj_type=House,
            obj_id=house_id,
            before={"status": house.status},
            after={"status": House.Status.CANCELLED},
            reason=reason.strip(),
        )
    return House.objects.get(pk=house_id)


def purchases_to_refund() -> QuerySet[Reservation]:
    """The purchases a cancellation refunds: completed, paid, no refund opened yet.

    Staff's cancel confirmation counts these for the house before they confirm.
    """
    return Reservation.objects.filter(
        status=Reservation.Status.COMPLETED,
        payments__amount__gt=0,
        payments__refunds__isnull=True,
    )


def refund_cancelled_purchases(
    *, house_id: int | None = None, batch_size: int = REFUND_BATCH_SIZE
) -> int:
    """Open a refund for every completed, paid purchase of a cancelled house not yet refunded."""
    purchases = purchases_to_refund().filter(house__status=House.Status.CANCELLED)
    if house_id is not None:
        purchases = purchases.filter(house_id=house_id)
    opened = 0
    for reservation_id in purchases.order_by("created_at").values_list("pk", flat=True)[
        :batch_size
    ]:
        try:
            refund_purchase(reservation=reservation_id, reason=LOTTERY_CANCELLED_REFUND_REASON)
        except Exception:  # the next pass tries this one again; the others go on
            logger.exception("could not open the refund of purchase %s", reservation_id)
            metrics.increment("draws_errors_total", step="cancel_refund")
            continue
        opened += 1
    if opened:
        logger.info("opened %s refund(s) of cancelled lotteries", opened)
    return opened
