"""Checkout: a pending reservation becomes paid, numbered tickets, or nothing and the money back.

``start_checkout`` (the API) moves ``pending -> processing`` and creates the
pending payment in one transaction, then makes sure a ``process_checkout``
task will drain its house's queue (``enqueue_checkout``: one message per burst
of checkouts of a house, not one per checkout). ``process_checkout`` (a task)
charges with key = reservation id, then either issues the tickets, fails the
reservation (declined: inventory released), or, when the tickets cannot be
issued after a successful charge, opens a refund and keeps the inventory held
(``refund_pending``) until the refund succeeds.

Every step is a conditional transition under the global lock order (house,
reservation, payment: ``core.locks``), so running the task twice, or again after a crash at
any line, ends in the same state with one charge, one set of tickets or one
refund. ``recover_stuck_checkouts`` resolves what a lost task left behind by
asking the gateway whether the charge happened.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from core import exceptions as domain
from core import failpoints, idempotency, metrics, outbox, shutdown
from core.dead_letters import close_resolved_dead_letters
from core.idempotency import Outcome
from core.locks import lock_rows
from lottery.models import House, PlayerProfile
from lottery.on_sale import is_on_sale, on_sale_q
from lottery.services import check_profile_eligible, eligible_player, eligible_profile_q
from payments import services as payments
from payments.gateways import ChargeResult, GatewayError
from payments.models import Payment
from purchases.models import Ticket
from purchases.services.refunds import open_purchase_refund
from reservations import waiting
from reservations.models import Reservation
from reservations.services.lifecycle import Hold, release_holds

logger = logging.getLogger(__name__)

RECOVERY_BATCH_SIZE = 100
# At most this many checkouts of one house charged by one task and issued in one block.
BATCH_SIZE = 20
# A batch member whose charge outcome is unknown is charged again (same key) by its own
# task after this pause; that task retries with backoff like any checkout task.
UNKNOWN_CHARGE_RETRY_SECONDS = 2
# A drain takes batches until its house has no unclaimed checkout, at most this many
# per task (then it hands over to a new task, so other houses' messages get a turn).
MAX_DRAIN_BATCHES = 50
# Set while a drain of the house is queued or running: checkouts committed meanwhile
# send no message of their own, the drain claims them. If that drain's message is lost,
# the flag expires and the house's next checkout queues one, or requeue_stranded_checkouts
# does (recovery is the last net).
DRAIN_FLAG_KEY = "checkout:drain:{}"
DRAIN_FLAG_TTL_SECONDS = 10
# A checkout still unclaimed this long after it started lost its message (a broker
# that restarted empty) and nothing queued its house since: requeue_stranded_checkouts
# queues a drain, long before recovery would abandon it uncharged.
STRANDED_AFTER = timedelta(seconds=30)


def start_checkout(
    *,
    player: AbstractBaseUser,
    reservation_id: uuid.UUID,
    payment_token: str,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> None:
    """Move the player's pending, unexpired reservation to ``processing`` and enqueue payment.

    With ``idempotency_key`` the accepted answer is stored under the key in the
    same transaction (see ``start_checkout_once``). Accepted, that is three
    statements: the conditional move (which also checks the house is on sale and
    the player eligible), the payment, the key's record.
    """
    if not player.is_authenticated:
        raise domain.NotAuthenticated()
    if not player.is_active:
        raise domain.AccountSuspended()
    now = timezone.now()
    with transaction.atomic():
        moved = _move_to_processing(player_id=player.pk, reservation_id=reservation_id, now=now)
        if moved is None:
            raise _why_checkout_refused(player, reservation_id, now)
        house_id, amount, currency = moved
        payments.create_checkout_payment(
            reservation_id=reservation_id,
            amount=amount,
            currency=currency,
            payment_token=payment_token,
        )
        if idempotency_key and not idempotency.store_outcome(
            user_id=player.pk,
            key=idempotency_key,
            fingerprint=fingerprint,
            status=202,
            body=accepted_body(reservation_id),
            content_type="application/json",
            now=now,
        ):
            # The key is taken (a repeat, or a concurrent request): its answer is ours.
            raise domain.IdempotencyKeyInProgress()
        transaction.on_commit(
            lambda: enqueue_checkout(reservation_id, house_id=house_id), robust=True
        )


def _move_to_processing(
    *, player_id: int, reservation_id: uuid.UUID, now: datetime
) -> tuple[int, Decimal, str] | None:
    """``pending -> processing`` in one statement, if every rule allows it; returns the
    reservation's house, total price and currency, or None."""
    movable = Reservation.objects.filter(
        on_sale_q(now, prefix="house__"),
        eligible_profile_q(prefix="user__player_profile__"),
        pk=reservation_id,
        user_id=player_id,
        status=Reservation.Status.PENDING,
        expires_at__gt=now,
    ).values("pk")
    subquery, params = movable.query.sql_with_params()
    quote = connection.ops.quote_name
    field = Reservation._meta.get_field
    stamp = field("processed_at").get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Reservation._meta.db_table)} SET status = %s, processed_at = %s,"  # noqa: S608
            f" updated_at = %s WHERE id IN ({subquery})"
            " RETURNING house_id, total_price, currency",
            [Reservation.Status.PROCESSING, stamp, stamp, *params],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    house_id, total_price, currency = row
    return house_id, field("total_price").to_python(total_price), currency


def _why_checkout_refused(
    player: AbstractBaseUser, reservation_id: uuid.UUID, now: datetime
) -> domain.DomainError:
    """The refusal, in the order the rules are checked: the player, then the reservation."""
    try:
        eligible_player(player)
    except domain.DomainError as error:
        return error
    reservation = Reservation.objects.filter(pk=reservation_id, user_id=player.pk).first()
    if reservation is None:
        return domain.NotFound()
    if reservation.status != Reservation.Status.PENDING:
        return domain.InvalidState(
            f"The reservation is {reservation.status}; only a pending one can be paid."
        )
    if reservation.expires_at <= now:
        return domain.InvalidState("The reservation has expired.")
    return domain.SalesClosed()


def accepted_body(reservation_id: uuid.UUID) -> bytes:
    """The 202 answer of ``POST /reservations/{id}/checkout/``."""
    return json.dumps(
        {"id": str(reservation_id), "status": Reservation.Status.PROCESSING},
        separators=(",", ":"),
    ).encode()


def start_checkout_once(
    *,
    player: AbstractBaseUser,
    reservation_id: uuid.UUID,
    payment_token: str,
    idempotency_key: str,
    fingerprint: str,
) -> Outcome:
    """``start_checkout`` behind an ``Idempotency-Key``, without a separate claim of the key.

    A first use stores the 202 in the checkout's own transaction, and a business
    refusal after it (409, 404, ...) so that a retry gets the same refusal. A
    repeat of a key is not looked up first: its checkout cannot move again (the
    reservation left ``pending``) or cannot store its answer (the key is taken),
    rolls back, and the stored answer is replayed (or is 409/422, ``core.idempotency``).
    """
    try:
        start_checkout(
            player=player,
            reservation_id=reservation_id,
            payment_token=payment_token,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
    except domain.DomainError as error:
        # A request with the same key answered first (or meanwhile): its answer is ours.
        stored = idempotency.stored_outcome(
            user_id=player.pk, key=idempotency_key, fingerprint=fingerprint
        )
        if stored is not None:
            return stored
        if not isinstance(error, domain.IdempotencyKeyInProgress):
            idempotency.store_refusal(
                user_id=player.pk, key=idempotency_key, fingerprint=fingerprint, error=error
            )
        raise
    return Outcome(status=202, body=accepted_body(reservation_id))


def enqueue_checkout(reservation_id: uuid.UUID, *, house_id: int) -> bool:
    """After a checkout committed: queue a drain of its house, unless one is queued or running.

    A drain queued or running when this checkout committed claims it: it looks
    for unclaimed checkouts after it lets go of the flag (``process_checkout``).
    Returns whether a drain was queued.
    """
    if not _take_drain_flag(house_id):
        return False
    _send_checkout_task(reservation_id, house_id=house_id)
    return True


def requeue_stranded_checkouts(*, now: datetime | None = None) -> int:
    """Queue a drain for each house whose checkouts wait unclaimed past ``STRANDED_AFTER``.

    Their message was lost (a broker restarted empty, a publish failed) and no
    later checkout of the house queued a drain. A house whose drain is queued
    or running (its flag set) is left to it. Returns how many drains were queued.
    """
    bound = (now or timezone.now()) - STRANDED_AFTER
    houses = (
        _unclaimed_checkouts()
        .filter(processed_at__lt=bound)
        .order_by()
        .values_list("house_id", flat=True)
        .distinct()
    )
    queued = 0
    for house_id in list(houses):
        oldest = _unclaimed_checkouts(house_id).values_list("pk", flat=True).first()
        if oldest is not None and enqueue_checkout(oldest, house_id=house_id):
            logger.warning("queued a drain of house %s for its stranded checkouts", house_id)
            queued += 1
    metrics.increment("checkout_drains_requeued_total", queued)
    return queued


def _send_checkout_task(
    reservation_id: uuid.UUID, *, house_id: int | None = None, countdown: float | None = None
) -> None:
    from purchases.tasks import process_checkout  # same app; tasks.py imports this module

    try:
        process_checkout.apply_async((str(reservation_id),), countdown=countdown)
    except Exception:  # broker down (or, in-process, the task failed): recovery finishes it
        logger.exception("checkout of %s not enqueued or not finished", reservation_id)
        if house_id is not None:
            _drop_drain_flag(house_id)  # the next checkout of the house tries again


def _take_drain_flag(house_id: int) -> bool:
    """True when the caller must queue the drain: none of this house is queued or running."""
    if not settings.REDIS_URL:
        return True  # a per-process cache cannot see another process's drain
    try:
        return bool(cache.add(DRAIN_FLAG_KEY.format(house_id), 1, DRAIN_FLAG_TTL_SECONDS))
    except Exception:  # cache down: one message per checkout, as without coalescing
        logger.warning("checkout coalescing unavailable; queuing a drain of house %s", house_id)
        return True


def _drop_drain_flag(house_id: int) -> None:
    if not settings.REDIS_URL:
        return
    try:
        cache.delete(DRAIN_FLAG_KEY.format(house_id))
    except Exception:  # it expires on its own
        logger.warning("could not drop the checkout drain flag of house %s", house_id)


def _unclaimed_checkouts(house_id: int | None = None) -> QuerySet:
    """The house's (or every house's) checkouts whose charge nobody has started, oldest first."""
    checkouts = Reservation.objects.filter(
        status=Reservation.Status.PROCESSING,
        payments__status=Payment.Status.PENDING,
        payments__charge_attempted_at__isnull=True,
    ).order_by("processed_at")
    return checkouts if house_id is None else checkouts.filter(house_id=house_id)


def process_checkout(*, reservation_id: uuid.UUID) -> str:
    """Charge (once) and finish this checkout, and drain its house's queue; returns its status.

    The task charges this checkout and up to ``BATCH_SIZE`` - 1 others of the
    same house nobody has claimed, and finishes them in one locked block
    (``finish_checkouts``: one lock of the house, one UPDATE of its counters,
    one INSERT of the tickets); then the next batch, until the house has no
    unclaimed checkout (the checkouts committed meanwhile sent no message:
    ``enqueue_checkout``). A member whose charge outcome is unknown gets its own
    task (retry with the same key) and does not stop the others.

    Raises ``GatewayError`` when this reservation's charge outcome is unknown: the
    task retries with the same key, and recovery asks the gateway if it never knows.
    """
    row = Reservation.objects.filter(pk=reservation_id).values_list("house_id", "status").first()
    if row is None:
        raise domain.NotFound()
    house_id, status = row
    # Already settled (a duplicate message, a retry after the outcome, batched by
    # another task): the house may still have checkouts that coalesced onto this message.
    own_id = reservation_id if status == Reservation.Status.PROCESSING else None
    outcome, own_error = status, None
    started = time.perf_counter()
    holding = True  # the house's drain flag is ours (or nobody's) until we let go of it
    try:
        for _ in shutdown.batches("checkout_drain", max_batches=MAX_DRAIN_BATCHES):
            claimed, outcomes, error = _charge_and_finish_batch(house_id=house_id, own_id=own_id)
            if own_id is not None:
                outcome, own_error, own_id = outcomes[own_id], error, None
                metrics.observe(
                    "checkout_duration_seconds", time.perf_counter() - started, outcome=outcome
                )
            if claimed:
                continue
            # Let go, then look once more: a checkout that committed before we let go
            # sent no message, so it is ours; one after it queues its own drain.
            _drop_drain_flag(house_id)
            holding = False
            if not _unclaimed_checkouts(house_id).exists():
                break
            holding = _take_drain_flag(house_id)
            if not holding:
                break  # a drain was queued meanwhile and claims them
        else:  # the bound, or the worker shuts down: a new task goes on
            holding = not _hand_over_drain(house_id)
    finally:
        if holding:
            _drop_drain_flag(house_id)
    if own_error is not None:
        raise own_error
    return outcome


def _hand_over_drain(house_id: int) -> bool:
    """Queue a task for the house's oldest unclaimed checkout; False if none is left."""
    next_id = _unclaimed_checkouts(house_id).values_list("pk", flat=True).first()
    if next_id is None:
        return False
    _send_checkout_task(next_id, house_id=house_id)
    return True


def _charge_and_finish_batch(
    *, house_id: int, own_id: uuid.UUID | None
) -> tuple[int, dict[uuid.UUID, str], Exception | None]:
    """Claim, charge and finish one batch of the house's checkouts (``own_id``'s first).

    Returns how many were claimed, their statuses afterwards, and the gateway
    error of ``own_id``'s charge, if any (the caller raises it once done).
    """
    queued = _unclaimed_checkouts(house_id)
    if own_id is not None:
        queued = queued.exclude(pk=own_id)
    limit = BATCH_SIZE - 1 if own_id is not None else BATCH_SIZE
    claimed = payments.claim_charges(reservation_id=own_id, queued=queued.values("pk")[:limit])
    batch = [payment.reservation_id for payment in claimed]
    if own_id is not None and own_id not in batch:
        batch.insert(0, own_id)  # charged before (a retry after a crash): finish it all the same
    if not batch:
        return 0, {}, None
    own_error: Exception | None = None
    unknown: list[uuid.UUID] = []
    charged = []
    try:
        for payment, result in payments.call_charge_gateways(claimed):
            if isinstance(result, ChargeResult):
                charged.append((payment, result))
            elif payment.reservation_id == own_id:
                own_error = result  # raised once the rest of the batch is finished
            else:
                logger.warning("batched charge of %s left to its own task: %s", payment.pk, result)
                unknown.append(payment.reservation_id)
    finally:
        payments.record_charge_results(charged)  # one statement for the batch, even on a crash
    outcomes = finish_checkouts(house_id=house_id, reservation_ids=batch)
    for reservation_id in unknown:  # the same key again, after a pause, in its own task
        _send_checkout_task(reservation_id, countdown=UNKNOWN_CHARGE_RETRY_SECONDS)
    return len(claimed), outcomes, own_error


def finish_checkout(*, reservation_id: uuid.UUID, house_id: int | None = None) -> str:
    """Act on the recorded payment outcome: issue tickets, fail, or open a refund."""
    if house_id is None:
        house_id = Reservation.objects.values_list("house_id", flat=True).get(pk=reservation_id)
    return finish_checkouts(house_id=house_id, reservation_ids=[reservation_id])[reservation_id]


def finish_checkouts(*, house_id: int, reservation_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Act on the recorded payment outcomes of checkouts of one house, in one transaction.

    House, then the reservations, then their payments are locked (``core.locks``);
    each reservation still ``processing`` with a decided payment fails (declined),
    goes to ``refund_pending`` (paid, not issuable) or gets its tickets: all the
    issuable ones from one block of the house's counter. Returns each
    reservation's status afterwards (``processing`` while its outcome is unknown).
    """
    failpoints.hit("checkout.before_finish")
    with transaction.atomic():
        [house], reservations, locked_payments = lock_rows(
            House.objects.filter(pk=house_id),
            Reservation.objects.filter(pk__in=reservation_ids, house_id=house_id).order_by("pk"),
            Payment.objects.filter(reservation_id__in=reservation_ids).order_by("pk"),
        )
        payment_of = {payment.reservation_id: payment for payment in locked_payments}
        outcomes: dict[uuid.UUID, str] = {}
        paid: list[tuple[Reservation, Payment]] = []
        for reservation in reservations:
            payment = payment_of.get(reservation.pk)
            outcomes[reservation.pk] = reservation.status
            if reservation.status != Reservation.Status.PROCESSING or payment is None:
                continue
            if payment.status == Payment.Status.PENDING:
                continue  # outcome unknown: the task or recovery comes back
            if payment.status == Payment.Status.FAILED:
                _fail(reservation, payment)
                outcomes[reservation.pk] = Reservation.Status.FAILED
            else:
                paid.append((reservation, payment))
        reasons = _why_tickets_cannot_be_issued(house, [reservation for reservation, _ in paid])
        issuable = []
        for reservation, payment in paid:
            if reason := reasons.get(reservation.pk):
                _hold_for_refund(reservation, payment, reason)
                outcomes[reservation.pk] = Reservation.Status.REFUND_PENDING
            else:
                issuable.append((reservation, payment))
                outcomes[reservation.pk] = Reservation.Status.COMPLETED
        _issue_tickets(house, issuable)
        settled = {
            reservation.pk: outcomes[reservation.pk]
            for reservation in reservations
            if outcomes[reservation.pk] != reservation.status
        }
        if settled:
            transaction.on_commit(lambda: _after_settling(settled))
    for reservation_id in reservation_ids:
        outcomes.setdefault(reservation_id, Reservation.Status.PROCESSING)
    return outcomes


def _after_settling(outcomes: dict[uuid.UUID, str]) -> None:
    waiting.announce_settled(outcomes)  # answers the clients waiting with Prefer: wait=N
    for outcome in outcomes.values():
        metrics.increment("checkouts_total", outcome=outcome)


def _why_tickets_cannot_be_issued(house: House, reservations: list[Reservation]) -> dict:
    """Re-validated after the charge: the house may have closed or a player been banned.

    Returns the reason by reservation id, for those that cannot be issued.
    """
    if not reservations:
        return {}
    if not is_on_sale(house, timezone.now()):
        if house.deleted_at is None and house.status == House.Status.ACTIVE:
            reason = "sales_closed"  # active, but outside its sales window
        else:
            reason = "house_not_on_sale"
        return {reservation.pk: reason for reservation in reservations}
    profiles = {
        profile.user_id: profile
        for profile in PlayerProfile.objects.select_related("user").filter(
            user_id__in={reservation.user_id for reservation in reservations}
        )
    }
    reasons = {}
    for reservation in reservations:
        profile = profiles.get(reservation.user_id)
        try:
            check_profile_eligible(profile)
        except domain.DomainError as error:
            reasons[reservation.pk] = error.code
            continue
        if not profile.user.is_active:
            reasons[reservation.pk] = "account_suspended"
    return reasons


def _issue_tickets(house: House, purchases: list[tuple[Reservation, Payment]]) -> None:
    """One contiguous block per purchase from the locked house row's counter (invariant 2):
    one UPDATE of the counters, one INSERT of the tickets, one of the outbox events."""
    if not purchases:
        return
    purchases = sorted(purchases, key=lambda pair: (pair[0].processed_at, pair[0].pk))
    quantity = sum(reservation.quantity for reservation, _ in purchases)
    now = timezone.now()
    moved = House.objects.filter(pk=house.pk, tickets_reserved__gte=quantity).update(
        next_ticket_number=F("next_ticket_number") + quantity,
        tickets_reserved=F("tickets_reserved") - quantity,
        tickets_sold=F("tickets_sold") + quantity,
    )
    if not moved:
        raise domain.InvalidState(f"Counters of house {house.pk} are inconsistent.")
    tickets: list[Ticket] = []
    events: list[tuple[str, dict]] = []
    first = house.next_ticket_number
    for reservation, payment in purchases:
        numbers = list(range(first, first + reservation.quantity))
        first += reservation.quantity
        tickets += (
            Ticket(
                house_id=house.pk,
                ticket_number=number,
                owner_id=reservation.user_id,
                reservation_id=reservation.pk,
                payment_id=payment.pk,
                issued_at=now,
            )
            for number in numbers
        )
        events.append(
            (
                "tickets.issued",
                {
                    "reservation_id": reservation.pk,
                    "house_id": house.pk,
                    "user_id": reservation.user_id,
                    "ticket_numbers": numbers,
                },
            )
        )
        events.append(
            (
                "reservation.completed",
                {
                    "reservation_id": reservation.pk,
                    "payment_id": payment.pk,
                    "amount": payment.amount,
                    "currency": payment.currency,
                },
            )
        )
    house.next_ticket_number = first
    Ticket.objects.bulk_create(tickets)
    Reservation.objects.filter(
        pk__in=[reservation.pk for reservation, _ in purchases],
        status=Reservation.Status.PROCESSING,
    ).update(status=Reservation.Status.COMPLETED, failure_code="", updated_at=now)
    outbox.emit_many(events)


def _fail(reservation: Reservation, payment: Payment) -> None:
    """Declined (or never charged): the reservation fails and its tickets go back on sale."""
    code = payment.decline_code or "payment_declined"
    Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.PROCESSING).update(
        status=Reservation.Status.FAILED, failure_code=code, updated_at=timezone.now()
    )
    release_holds(house_id=reservation.house_id, holds=[_hold(reservation)])
    outbox.emit(
        "payment.failed",
        {"reservation_id": reservation.pk, "payment_id": payment.pk, "failure_code": code},
    )


def _hold_for_refund(reservation: Reservation, payment: Payment, reason: str) -> None:
    """Paid but not issuable: refund, keeping the inventory held until the refund succeeds."""
    if payment.amount == 0:  # nothing was paid: nothing to wait for
        Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.PROCESSING).update(
            status=Reservation.Status.REFUNDED, failure_code=reason, updated_at=timezone.now()
        )
        release_holds(house_id=reservation.house_id, holds=[_hold(reservation)])
        return
    Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.PROCESSING).update(
        status=Reservation.Status.REFUND_PENDING, failure_code=reason, updated_at=timezone.now()
    )
    open_purchase_refund(payment=payment, reason=f"tickets not issued: {reason}", actor=None)


def _hold(reservation: Reservation) -> Hold:
    return Hold(
        id=reservation.pk,
        house_id=reservation.house_id,
        user_id=reservation.user_id,
        quantity=reservation.quantity,
        promotion_id=reservation.promotion_id,
    )


def recover_stuck_checkouts(
    *, older_than: timedelta | None = None, now: datetime | None = None
) -> dict[str, int]:
    """Resolve ``processing`` reservations older than the bound by asking the gateway.

    Charged -> finish (tickets or refund); declined -> fail; never charged and
    no charge can still be in flight -> fail (``checkout_abandoned``). A
    gateway that cannot answer leaves the reservation for the next run
    (``postponed``); any other failure is logged and counted (``error``) and the
    rest of the batch goes on.
    """
    now = now or timezone.now()
    bound = now - (settings.CHECKOUT_STUCK_AFTER if older_than is None else older_than)
    stuck = list(
        Reservation.objects.filter(status=Reservation.Status.PROCESSING, processed_at__lt=bound)
        .order_by("processed_at")
        .values_list("pk", flat=True)[:RECOVERY_BATCH_SIZE]
    )
    outcomes: dict[str, int] = {}
    for reservation_id in shutdown.each("recover_stuck_checkouts", stuck):  # gateway calls
        try:
            outcome = _recover_one(reservation_id, attempted_before=bound)
        except GatewayError as exc:
            logger.warning("recovery of %s postponed: %s", reservation_id, exc)
            outcome = "postponed"
        except Exception:
            # One poisoned row must not stop the batch (it would come first again every run).
            logger.exception("recovery of stuck checkout %s failed", reservation_id)
            metrics.increment("checkout_recovery_errors_total")
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if stuck:
        logger.info("recovered stuck checkouts: %s", outcomes)
    # What recovery (or anything else) settled no longer needs staff: close its dead letters.
    close_resolved_dead_letters()
    return outcomes


def checkout_settled_reason(args: list, kwargs: dict) -> str | None:
    """Dead-letter resolver of ``checkout.process``: done once the reservation left
    ``pending``/``processing`` (completed, failed, refund pending or refunded, ...)."""
    reservation_id = kwargs.get("reservation_id") or args[0]
    status = Reservation.objects.filter(pk=reservation_id).values_list("status", flat=True).first()
    if status is None or status in (Reservation.Status.PENDING, Reservation.Status.PROCESSING):
        return None
    return f"reservation {reservation_id} is {status}"


def _recover_one(reservation_id: uuid.UUID, *, attempted_before: datetime) -> str:
    payment = Payment.objects.get(reservation_id=reservation_id)
    if payment.status == Payment.Status.PENDING:
        charge = payments.look_up_charge(payment=payment)
        if charge is None:
            payments.abandon_uncharged_payment(
                payment_id=payment.pk, attempted_before=attempted_before
            )
        else:
            payments.record_charge_result(payment_id=payment.pk, result=charge)
    return finish_checkout(reservation_id=reservation_id)
