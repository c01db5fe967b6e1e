"""Writes on payments and refunds, and the only code that calls the payment gateway.

Gateway calls never run inside a transaction (a slow gateway must not hold row
locks). Every row change is a conditional UPDATE on the current status, so a
retried or duplicated task changes nothing twice. The purchase-level effects
of a charge or refund (tickets, inventory) live in ``purchases.services``:
this module knows gateways and money, not houses or tickets.
"""

import contextvars
import logging
import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, connections, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from core import exceptions as domain
from core import failpoints, metrics, outbox
from core.locks import SkipLocked, lock_rows
from payments.gateways import (
    ChargeResult,
    GatewayError,
    GatewayRejected,
    GatewayTimeout,
    get_gateway,
)
from payments.models import Payment, Refund

logger = logging.getLogger(__name__)

# A refund handed to a task is not picked again by retry_refunds for this long.
REFUND_ATTEMPT_LEASE = timedelta(minutes=5)
MAX_REFUND_BACKOFF = timedelta(days=1)


def create_checkout_payment(
    *, reservation_id: uuid.UUID, amount: Decimal, currency: str, payment_token: str
) -> Payment:
    """The pending payment for a reservation entering checkout (caller's transaction).

    Its gateway idempotency key is the reservation id: however many times the
    checkout runs, the gateway charges once.
    """
    return Payment.objects.create(
        reservation_id=reservation_id,
        amount=amount,
        currency=currency,
        gateway=get_gateway().name,
        payment_token=payment_token,
        idempotency_key=str(reservation_id),
    )


def claim_charges(*, reservation_id: uuid.UUID | None, queued: QuerySet) -> list[Payment]:
    """Claim this reservation's pending payment, and the unclaimed ones of ``queued``, to charge.

    One statement: every claimed payment gets ``charge_attempted_at`` (recovery
    will not fail a payment whose charge may be in flight). The caller's own
    payment is claimed whenever it is pending (a retry charges again with the
    same key: the gateway charges once); another's only while nobody claimed
    it, so two batches never both charge it. ``queued`` is a queryset of
    reservation ids (the same house's other checkouts waiting in the queue).
    Without ``reservation_id`` (a drain whose own checkout is settled) only
    ``queued`` is claimed. Returns the claimed payments, the caller's first when claimed.
    """
    subquery, sub_params = queued.query.sql_with_params()
    table = connection.ops.quote_name(Payment._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in Payment._meta.concrete_fields)
    claimed = list(
        Payment.objects.raw(
            f"UPDATE {table} SET charge_attempted_at = %s WHERE status = %s"  # noqa: S608
            " AND (reservation_id = %s OR (charge_attempted_at IS NULL"
            f" AND reservation_id IN ({subquery}))) RETURNING {columns}",
            [
                Payment._meta.get_field("charge_attempted_at").get_db_prep_value(
                    timezone.now(), connection
                ),
                Payment.Status.PENDING,
                Payment._meta.get_field("reservation").get_db_prep_value(
                    reservation_id, connection
                ),
                *sub_params,
            ],
        )
    )
    claimed.sort(key=lambda payment: (payment.reservation_id != reservation_id, payment.pk))
    return claimed


def charge_payment(*, payment: Payment) -> Payment:
    """Charge a pending payment once and record the outcome.

    Returns the payment, ``succeeded`` or ``failed``. Raises ``GatewayError``
    when the outcome is unknown (timeout, gateway down): the caller retries
    with the same key, or ``recover_stuck_checkouts`` asks the gateway later.
    """
    payment_id = payment.pk
    if payment.status != Payment.Status.PENDING:
        return payment
    # Stamped only while pending: recovery will not fail a payment whose charge
    # may still be in flight, and will not be overtaken by a late charge.
    stamped = Payment.objects.filter(pk=payment_id, status=Payment.Status.PENDING).update(
        charge_attempted_at=timezone.now()
    )
    if not stamped:
        return Payment.objects.get(pk=payment_id)
    return charge_claimed_payment(payment=payment)


def charge_claimed_payment(*, payment: Payment) -> Payment:
    """The gateway call and its record, for a payment stamped by ``claim_charges`` or
    ``charge_payment``. Raises ``GatewayError`` when the outcome is unknown."""
    [payment] = record_charge_results([(payment, call_charge_gateway(payment=payment))])
    return payment


def call_charge_gateways(
    payments: list[Payment],
) -> Iterator[tuple[Payment, ChargeResult | GatewayError | GatewayRejected]]:
    """Ask the gateway to charge claimed payments; yields each with its result or gateway error.

    A remote gateway is called for up to ``PAYMENT_CHARGE_CONCURRENCY`` payments at
    once: its latency is network wait, and one after another a batch of 20 at
    300 ms would hold the last buyer 6 s and drain a house at 3 purchases/s.
    Results come in the order the calls end. An unexpected error (a bug, an
    injected fault) is raised only after every other call ended and was yielded,
    so the caller records each charge that happened.
    """
    concurrent = all(_charges_concurrently(payment.gateway) for payment in payments)
    workers = min(len(payments), settings.PAYMENT_CHARGE_CONCURRENCY) if concurrent else 1
    if workers <= 1:
        for payment in payments:
            yield payment, _charge_or_gateway_error(payment)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="charge") as pool:
        calls = {
            pool.submit(contextvars.copy_context().run, _charge_in_thread, payment): payment
            for payment in payments
        }
        unexpected: BaseException | None = None
        for call in as_completed(calls):
            try:
                result = call.result()
            except BaseException as exc:
                unexpected = unexpected or exc
            else:
                yield calls[call], result
    if unexpected is not None:
        raise unexpected


def _charges_concurrently(gateway_name: str) -> bool:
    try:
        return get_gateway(gateway_name).concurrent_charges
    except GatewayRejected:  # unknown gateway: each such charge fails on its own
        return False


def _charge_in_thread(payment: Payment) -> ChargeResult | GatewayError | GatewayRejected:
    try:
        return _charge_or_gateway_error(payment)
    finally:
        connections.close_all()  # this thread's own, if the call used the database


def _charge_or_gateway_error(payment: Payment) -> ChargeResult | GatewayError | GatewayRejected:
    try:
        return call_charge_gateway(payment=payment)
    except (GatewayError, GatewayRejected) as exc:
        return exc


def call_charge_gateway(*, payment: Payment) -> ChargeResult:
    """Ask the gateway to charge a claimed payment (its key: the gateway charges once).

    Records nothing: ``record_charge_results`` does, for one payment or a batch.
    Raises ``GatewayError`` when the outcome is unknown.
    """
    if payment.amount == 0:
        result = ChargeResult(
            status=ChargeResult.SUCCEEDED,
            reference="free",
            amount=payment.amount,
            currency=payment.currency,
        )
    else:
        result = get_gateway(payment.gateway).charge(
            amount=payment.amount,
            currency=payment.currency,
            token=payment.payment_token,
            idempotency_key=payment.idempotency_key,
        )
    failpoints.hit("checkout.after_charge")
    return result


def record_charge_result(
    *, payment_id: int, result: ChargeResult, payment: Payment | None = None
) -> Payment:
    """Record a charge's outcome on a pending payment; see ``record_charge_results``."""
    payment = payment if payment is not None else Payment.objects.get(pk=payment_id)
    [payment] = record_charge_results([(payment, result)])
    return payment


def record_charge_results(outcomes: list[tuple[Payment, ChargeResult]]) -> list[Payment]:
    """Record charge outcomes on pending payments: one UPDATE for the whole batch.

    The card token is dropped once the charge has an outcome. The caller's
    copies are updated in place and returned; a payment something else recorded
    first (a duplicate run, recovery) is read back instead, and a charge that
    landed on a payment recovery had already abandoned is reported to staff.
    """
    if not outcomes:
        return []
    now = timezone.now()
    statuses, references, declines = [], [], []
    for payment, result in outcomes:
        status = Payment.Status.SUCCEEDED if result.succeeded else Payment.Status.FAILED
        decline = "" if result.succeeded else (result.decline_code or "payment_declined")
        statuses.append(When(pk=payment.pk, then=Value(status)))
        references.append(When(pk=payment.pk, then=Value(result.reference)))
        declines.append(When(pk=payment.pk, then=Value(decline)))
    recorded = Payment.objects.filter(
        pk__in=[payment.pk for payment, _ in outcomes], status=Payment.Status.PENDING
    ).update(
        status=Case(*statuses, default=F("status")),
        gateway_reference=Case(*references, default=F("gateway_reference")),
        decline_code=Case(*declines, default=F("decline_code")),
        completed_at=now,
        payment_token="",
    )
    if recorded == len(outcomes):
        for payment, result in outcomes:
            payment.status = Payment.Status.SUCCEEDED if result.succeeded else Payment.Status.FAILED
            payment.gateway_reference = result.reference
            payment.decline_code = (
                "" if result.succeeded else (result.decline_code or "payment_declined")
            )
            payment.completed_at = now
            payment.payment_token = ""
        return [payment for payment, _ in outcomes]
    with transaction.atomic():
        # Some were recorded first by a concurrent run (duplicate message, recovery): read back.
        stored = Payment.objects.in_bulk([payment.pk for payment, _ in outcomes])
        for payment, result in outcomes:
            if result.succeeded and stored[payment.pk].status == Payment.Status.FAILED:
                _report_charge_after_abandonment(payment=stored[payment.pk], result=result)
    return [stored[payment.pk] for payment, _ in outcomes]


def _report_charge_after_abandonment(*, payment: Payment, result: ChargeResult) -> None:
    """Money taken for a payment recovery already failed: staff must refund it by hand.

    Only possible when the gateway records a charge more than CHECKOUT_STUCK_AFTER
    after it was asked for; the reservation is gone, so nothing can be issued.
    """
    logger.error(
        "payment %s was charged (%s) after it had been abandoned as never charged",
        payment.pk,
        result.reference,
    )
    metrics.increment("payments_charged_after_abandonment_total")
    outbox.emit(
        "payment.needs_attention",
        {
            "payment_id": payment.pk,
            "reservation_id": payment.reservation_id,
            "gateway_reference": result.reference,
            "reason": "charged_after_abandonment",
        },
    )


def look_up_charge(*, payment: Payment) -> ChargeResult | None:
    """Ask the gateway what became of this payment's charge (None: never made).

    Raises ``GatewayTimeout`` when the gateway reports a charge for another amount or
    currency than this payment's: that is not an outcome we can record.
    """
    charge = get_gateway(payment.gateway).get_status(idempotency_key=payment.idempotency_key)
    if charge is not None and (
        (charge.amount is not None and charge.amount != payment.amount)
        or (charge.currency and charge.currency != payment.currency)
    ):
        raise GatewayTimeout(
            f"gateway reports {charge.amount} {charge.currency} for payment {payment.pk}"
            f" of {payment.amount} {payment.currency}"
        )
    return charge


def abandon_uncharged_payment(*, payment_id: int, attempted_before: datetime) -> bool:
    """Fail a pending payment the gateway never charged, if no charge can be in flight."""
    return bool(
        Payment.objects.filter(pk=payment_id, status=Payment.Status.PENDING)
        .filter(Q(charge_attempted_at__isnull=True) | Q(charge_attempted_at__lt=attempted_before))
        .update(
            status=Payment.Status.FAILED,
            decline_code="checkout_abandoned",
            completed_at=timezone.now(),
            payment_token="",
        )
    )


def open_refund(
    *,
    payment: Payment,
    amount: Decimal,
    reason: str,
    actor: AbstractBaseUser | None = None,
) -> Refund:
    """Create a pending refund; the caller holds the payment row lock (house -> reservation
    -> payment). The conditional UPDATE, backed by a CHECK, keeps refunds within the payment.
    """
    if amount <= 0:
        raise domain.Unprocessable("A refund must be for a positive amount.")
    grown = Payment.objects.filter(
        pk=payment.pk,
        status=Payment.Status.SUCCEEDED,
        refunded_total__lte=F("amount") - amount,
    ).update(refunded_total=F("refunded_total") + amount)
    if not grown:
        raise domain.InvalidState("The refund would exceed what was paid.")
    transaction.on_commit(lambda: metrics.increment("refunds_total", status="opened"))
    return Refund.objects.create(
        payment=payment,
        amount=amount,
        reason=reason[:255],
        requested_by=actor if actor is not None and actor.is_authenticated else None,
        # The on-commit task attempts it now; retry_refunds only after the lease.
        next_attempt_at=timezone.now() + REFUND_ATTEMPT_LEASE,
    )


def call_refund_gateway(*, refund_id: int) -> tuple[Refund, bool, str]:
    """Ask the gateway to refund (same key every attempt: it refunds at most once).

    Returns (refund, succeeded, error). Does not record anything.
    """
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    payment = refund.payment
    if payment.gateway_reference == "free":
        return refund, True, ""
    try:
        result = get_gateway(payment.gateway).refund(
            charge_reference=payment.gateway_reference,
            amount=refund.amount,
            currency=payment.currency,
            idempotency_key=refund.idempotency_key,
        )
    except (GatewayError, GatewayRejected) as exc:
        return refund, False, f"{type(exc).__name__}: {exc}"
    if result.succeeded:
        Refund.objects.filter(pk=refund_id).update(gateway_reference=result.reference)
        return refund, True, ""
    return refund, False, f"refused: {result.failure_code or 'unknown'}"


def mark_refund_succeeded(*, refund: Refund) -> bool:
    """Inside the caller's transaction, with the locks held."""
    succeeded = Refund.objects.filter(
        pk=refund.pk,
        status__in=[
            Refund.Status.PENDING,
            Refund.Status.FAILED,
            Refund.Status.NEEDS_ATTENTION,
        ],
    ).update(status=Refund.Status.SUCCEEDED, succeeded_at=timezone.now(), last_error="")
    if succeeded:
        transaction.on_commit(lambda: metrics.increment("refunds_total", status="succeeded"))
    return bool(succeeded)


def record_refund_failure(*, refund_id: int, error: str) -> Refund:
    """One more failed attempt: backoff, or ``needs_attention`` after the last one."""
    now = timezone.now()
    with transaction.atomic():
        [still_due] = lock_rows(
            Refund.objects.filter(
                pk=refund_id, status__in=[Refund.Status.PENDING, Refund.Status.FAILED]
            )
        )
        if not still_due:  # succeeded meanwhile (or already needs attention)
            return Refund.objects.get(pk=refund_id)
        refund = still_due[0]
        refund.attempts += 1
        refund.last_error = error[:4000]
        if refund.attempts >= settings.REFUND_MAX_ATTEMPTS:
            refund.status = Refund.Status.NEEDS_ATTENTION
            outbox.emit(
                "refund.needs_attention",
                {
                    "refund_id": refund.pk,
                    "payment_id": refund.payment_id,
                    "attempts": refund.attempts,
                    "last_error": refund.last_error,
                },
            )
            logger.error("refund %s needs attention after %s attempts", refund.pk, refund.attempts)
        else:
            refund.status = Refund.Status.FAILED
            refund.next_attempt_at = now + refund_backoff(refund.attempts)
        refund.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
    metrics.increment("refunds_total", status=refund.status)
    return refund


def refund_backoff(attempts: int) -> timedelta:
    """Exponential in the number of failed attempts, with jitter so retries spread out."""
    base = settings.REFUND_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    return min(MAX_REFUND_BACKOFF, timedelta(seconds=base * random.uniform(0.5, 1.0)))


def claim_due_refunds(*, batch_size: int = 100) -> list[int]:
    """Due refunds (pending or failed, past ``next_attempt_at``), leased to the caller."""
    now = timezone.now()
    with transaction.atomic():
        [ids] = lock_rows(
            SkipLocked(
                Refund.objects.filter(
                    status__in=[Refund.Status.PENDING, Refund.Status.FAILED],
                    next_attempt_at__lte=now,
                )
                .order_by("next_attempt_at")
                .values_list("pk", flat=True)[:batch_size]
            )
        )
        Refund.objects.filter(pk__in=ids).update(next_attempt_at=now + REFUND_ATTEMPT_LEASE)
    return ids


def retry_refund_now(*, refund_id: int, actor: AbstractBaseUser | None = None) -> Refund:
    """Staff: try a failed or needs-attention refund again, with a fresh attempt budget."""
    updated = Refund.objects.filter(
        pk=refund_id,
        status__in=[Refund.Status.FAILED, Refund.Status.NEEDS_ATTENTION],
    ).update(status=Refund.Status.PENDING, attempts=0, next_attempt_at=timezone.now())
    if not updated:
        raise domain.InvalidState(
            "Only failed refunds or refunds needing attention can be retried."
        )
    logger.info("refund %s retried by %s", refund_id, getattr(actor, "pk", None))
    return Refund.objects.get(pk=refund_id)
