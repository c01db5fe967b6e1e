"""Refunding purchases: after a checkout that could not issue tickets, or by staff.

A refund is opened under the payment row lock (never more than was paid),
attempted by a task outside any transaction (same gateway key every attempt,
so the gateway refunds at most once), and settled in one transaction under
house -> reservation -> payment -> refund locks (``core.locks``): the refund succeeds, and only
then are the tickets marked refunded and the inventory released (invariant 6).
"""

from __future__ import annotations

import logging
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core import exceptions as domain
from core import failpoints, outbox
from core.audit import log_action
from core.locks import lock_rows
from lottery.models import House
from payments import services as payments
from payments.models import Payment, Refund
from purchases.models import Ticket
from reservations.models import Reservation
from reservations.services.lifecycle import Hold, release_holds

logger = logging.getLogger(__name__)

# failure_code of a completed purchase refunded by staff or a cancelled lottery.
PURCHASE_REFUNDED = "purchase_refunded"


def open_purchase_refund(
    *, payment: Payment, reason: str, actor: AbstractBaseUser | None
) -> Refund:
    """Inside the caller's transaction, with house, reservation and payment locked."""
    refund = payments.open_refund(
        payment=payment, amount=payment.amount, reason=reason, actor=actor
    )
    outbox.emit(
        "refund.requested",
        {
            "refund_id": refund.pk,
            "reservation_id": payment.reservation_id,
            "amount": refund.amount,
            "reason": refund.reason,
        },
    )
    transaction.on_commit(lambda: enqueue_refund_attempt(refund.pk), robust=True)
    return refund


def enqueue_refund_attempt(refund_id: int) -> None:
    from purchases.tasks import attempt_refund  # same app; tasks.py imports this module

    try:
        attempt_refund.delay(refund_id)
    except Exception:  # broker down: retry_refunds picks it up after its lease
        logger.exception("could not enqueue refund %s", refund_id)


def refund_purchase(
    *,
    reservation: Reservation | uuid.UUID,
    reason: str,
    actor: AbstractBaseUser | None = None,
) -> Refund:
    """Refund a completed purchase in full (staff, lottery cancellation). Idempotent.

    The tickets stay active until the money is back; then, in one transaction,
    they are marked refunded, the sold counter is released and the reservation
    becomes ``refunded``. Asking again returns the refund already under way.
    """
    reservation_id = reservation.pk if isinstance(reservation, Reservation) else reservation
    house_id = (
        Reservation.objects.filter(pk=reservation_id).values_list("house_id", flat=True).first()
    )
    if house_id is None:
        raise domain.NotFound()
    with transaction.atomic():
        _, [reservation], payments_of_reservation = lock_rows(
            House.objects.filter(pk=house_id).values_list("pk", flat=True),
            Reservation.objects.filter(pk=reservation_id),
            Payment.objects.filter(reservation_id=reservation_id),
        )
        payment = payments_of_reservation[0] if payments_of_reservation else None
        existing = None if payment is None else payment.refunds.order_by("pk").first()
        if existing is not None:
            return existing
        if reservation.status != Reservation.Status.COMPLETED or payment is None:
            raise domain.InvalidState("Only a completed purchase can be refunded.")
        if payment.amount == 0:
            raise domain.InvalidState("Nothing was paid for this purchase.")
        refund = open_purchase_refund(payment=payment, reason=reason, actor=actor)
        if actor is not None:  # a cancelled lottery's refunds are the system's, not staff's
            log_action(
                actor=actor,
                action="purchase_refunded",
                obj_type=Payment,
                obj_id=payment.pk,
                before={"reservation_status": reservation.status},
                after={
                    "refund_id": refund.pk,
                    "refund_amount": refund.amount,
                    "reservation_id": reservation.pk,
                },
                reason=reason,
            )
        return refund


def attempt_refund(*, refund_id: int) -> str:
    """One attempt at the gateway; settles on success, backs off on failure."""
    refund = Refund.objects.get(pk=refund_id)
    if refund.status not in (Refund.Status.PENDING, Refund.Status.FAILED):
        return refund.status
    refund, succeeded, error = payments.call_refund_gateway(refund_id=refund_id)
    failpoints.hit("refund.after_gateway")
    if succeeded:
        return settle_refund(refund_id=refund_id)
    logger.warning("refund %s attempt failed: %s", refund_id, error)
    return payments.record_refund_failure(refund_id=refund_id, error=error).status


def settle_refund(*, refund_id: int) -> str:
    """The gateway refunded: record it and release what the purchase held, all at once."""
    reservation_id, house_id = (
        Refund.objects.filter(pk=refund_id)
        .values_list("payment__reservation_id", "payment__reservation__house_id")
        .get()
    )
    with transaction.atomic():
        _, [reservation], _, [refund] = lock_rows(
            House.objects.filter(pk=house_id).values_list("pk", flat=True),
            Reservation.objects.filter(pk=reservation_id),
            Payment.objects.filter(reservation_id=reservation_id).values_list("pk", flat=True),
            Refund.objects.filter(pk=refund_id),
        )
        if not payments.mark_refund_succeeded(refund=refund):
            return Refund.objects.get(pk=refund_id).status  # settled by someone else
        _release_purchase(reservation)
        outbox.emit(
            "refund.succeeded",
            {
                "refund_id": refund.pk,
                "reservation_id": reservation.pk,
                "amount": refund.amount,
            },
        )
    return Refund.Status.SUCCEEDED


def _release_purchase(reservation: Reservation) -> None:
    now = timezone.now()
    hold = Hold(
        id=reservation.pk,
        house_id=reservation.house_id,
        user_id=reservation.user_id,
        quantity=reservation.quantity,
        promotion_id=reservation.promotion_id,
    )
    if reservation.status == Reservation.Status.REFUND_PENDING:
        Reservation.objects.filter(
            pk=reservation.pk, status=Reservation.Status.REFUND_PENDING
        ).update(status=Reservation.Status.REFUNDED, updated_at=now)
        release_holds(house_id=reservation.house_id, holds=[hold])
    elif reservation.status == Reservation.Status.COMPLETED:
        refunded = Ticket.objects.filter(
            reservation_id=reservation.pk, status=Ticket.Status.ACTIVE
        ).update(status=Ticket.Status.REFUNDED, refunded_at=now)
        if refunded != reservation.quantity:
            raise domain.InvalidState(
                f"Reservation {reservation.pk} has {refunded} active tickets."
            )
        Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.COMPLETED).update(
            status=Reservation.Status.REFUNDED, failure_code=PURCHASE_REFUNDED, updated_at=now
        )
        release_holds(house_id=reservation.house_id, holds=[hold], counter="tickets_sold")
    else:
        logger.error(
            "refund settled for reservation %s in status %s", reservation.pk, reservation.status
        )


def retry_due_refunds(*, batch_size: int = 100) -> int:
    """Beat: hand every due refund (pending or failed past its backoff) to a task."""
    ids = payments.claim_due_refunds(batch_size=batch_size)
    for refund_id in ids:
        enqueue_refund_attempt(refund_id)
    return len(ids)


def retry_refund(*, refund_id: int, actor: AbstractBaseUser | None = None) -> Refund:
    """Staff: try a failed or needs-attention refund again now (audited with an actor)."""
    with transaction.atomic():
        before = Refund.objects.filter(pk=refund_id).values("status", "attempts").first()
        refund = payments.retry_refund_now(refund_id=refund_id, actor=actor)
        if actor is not None:
            log_action(
                actor=actor,
                action="refund_retried",
                obj_type=Refund,
                obj_id=refund_id,
                before=before,
                after={"status": refund.status, "attempts": refund.attempts},
            )
        transaction.on_commit(lambda: enqueue_refund_attempt(refund_id), robust=True)
    return refund


def refund_settled_reason(args: list, kwargs: dict) -> str | None:
    """Dead-letter resolver of ``refunds.attempt``: done once the refund succeeded (a failed
    one is retried by the refund job; one that needs attention is shown to staff there)."""
    refund_id = kwargs.get("refund_id") or args[0]
    status = Refund.objects.filter(pk=refund_id).values_list("status", flat=True).first()
    return f"refund {refund_id} succeeded" if status == Refund.Status.SUCCEEDED else None
