"""Checkout through the services and eager tasks on real PostgreSQL and Redis."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from core import exceptions as domain
from core.models import DeadLetter, OutboxEvent
from lottery.models import House, HouseParticipant, PlayerProfile
from payments.models import Payment, SandboxLedgerEntry
from purchases.models import Ticket
from purchases.services.checkout import recover_stuck_checkouts, start_checkout
from purchases.tasks import process_checkout
from reservations.models import Reservation
from tests.purchases.conftest import checkout_closing_the_house_meanwhile, reserve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_retry_chain")]


HOUR = timedelta(hours=1)


def checkout(player, reservation: Reservation, token: str = "tok_ok") -> Reservation:
    start_checkout(player=player, reservation_id=reservation.pk, payment_token=token)
    reservation.refresh_from_db()
    return reservation


def numbers_of(reservation: Reservation) -> list[int]:
    return sorted(
        Ticket.objects.filter(reservation=reservation).values_list("ticket_number", flat=True)
    )


def charges() -> int:
    return SandboxLedgerEntry.objects.filter(kind="charge").count()


def test_checkout_issues_one_contiguous_block_and_completes(player, house) -> None:
    reserve(player, house, 1)  # another purchase first: numbers continue after it
    first = reserve(player, house, 1)
    second = reserve(player, house, 3)
    assert checkout(player, first).status == Reservation.Status.COMPLETED
    assert checkout(player, second).status == Reservation.Status.COMPLETED
    assert numbers_of(first) == [1]
    assert numbers_of(second) == [2, 3, 4]
    house.refresh_from_db()
    assert (house.tickets_sold, house.tickets_reserved, house.next_ticket_number) == (4, 1, 5)
    payment = Payment.objects.get(reservation=second)
    assert payment.status == Payment.Status.SUCCEEDED and payment.amount == Decimal("30.00")
    assert set(OutboxEvent.objects.values_list("event_type", flat=True)) == {
        "tickets.issued",
        "reservation.completed",
    }
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()
    call_command("check_integrity")


@pytest.mark.parametrize(
    ("token", "code"),
    [("tok_declined", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")],
)
def test_declined_card_fails_and_puts_the_tickets_back(player, house, token, code) -> None:
    reservation = reserve(player, house, 2)
    reservation = checkout(player, reservation, token)
    assert (reservation.status, reservation.failure_code) == (Reservation.Status.FAILED, code)
    house.refresh_from_db()
    assert (house.tickets_sold, house.tickets_reserved, house.participants_count) == (0, 0, 0)
    assert not HouseParticipant.objects.exists() and not Ticket.objects.exists()
    assert OutboxEvent.objects.filter(event_type="payment.failed").count() == 1
    call_command("check_integrity")


def test_only_a_pending_unexpired_own_reservation_can_be_checked_out(
    player, make_player, house
) -> None:
    reservation = reserve(player, house, 1)
    with pytest.raises(domain.NotFound):
        start_checkout(player=make_player(), reservation_id=reservation.pk, payment_token="tok_ok")
    checkout(player, reservation)
    with pytest.raises(domain.InvalidState):
        start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    late = reserve(player, house, 1)
    Reservation.objects.filter(pk=late.pk).update(expires_at=late.created_at)
    with pytest.raises(domain.InvalidState, match="expired"):
        start_checkout(player=player, reservation_id=late.pk, payment_token="tok_ok")
    assert Payment.objects.count() == 1


@pytest.mark.parametrize("failpoint", ["checkout.after_charge", "checkout.before_finish"])
def test_exception_after_the_charge_is_retried_to_one_charge_and_one_ticket_set(
    player, house, failpoints_on, failpoint
) -> None:
    failpoints_on(failpoint, action="raise", times=2)
    reservation = checkout(player, reserve(player, house, 3))
    assert reservation.status == Reservation.Status.COMPLETED
    assert charges() == 1
    assert numbers_of(reservation) == [1, 2, 3]
    assert not DeadLetter.objects.exists()
    call_command("check_integrity")


def test_a_duplicate_task_message_changes_nothing(player, house) -> None:
    reservation = checkout(player, reserve(player, house, 2))
    assert process_checkout.delay(str(reservation.pk)).get() == Reservation.Status.COMPLETED
    assert charges() == 1
    assert numbers_of(reservation) == [1, 2]
    assert OutboxEvent.objects.filter(event_type="tickets.issued").count() == 1


def test_gateway_timeout_is_resolved_by_recover_stuck_checkouts(player, house) -> None:
    reservation = checkout(player, reserve(player, house, 2), "tok_timeout")
    # Every retry timed out: the task gave up, the money is taken, no tickets yet.
    assert reservation.status == Reservation.Status.PROCESSING
    assert DeadLetter.objects.get().task_name == "checkout.process"
    assert charges() == 1 and not Ticket.objects.exists()
    assert recover_stuck_checkouts(older_than=timedelta(0)) == {Reservation.Status.COMPLETED: 1}
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.COMPLETED
    assert numbers_of(reservation) == [1, 2] and charges() == 1
    call_command("check_integrity")


def test_dead_letter_of_a_checkout_closes_when_recovery_completes_it(player, house) -> None:
    reservation = checkout(player, reserve(player, house, 2), "tok_timeout")
    letter = DeadLetter.objects.get(task_name="checkout.process")
    assert letter.status == DeadLetter.Status.OPEN

    recover_stuck_checkouts(older_than=timedelta(0))

    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.RESOLVED
    assert letter.resolution == f"reservation {reservation.pk} is completed"
    assert letter.resolved_at is not None


def test_dead_letter_stays_open_while_its_checkout_is_unsettled(player, house) -> None:
    reservation = checkout(player, reserve(player, house, 2), "tok_timeout")
    Payment.objects.filter(reservation=reservation).update(amount=Decimal("99.00"))

    assert recover_stuck_checkouts(older_than=timedelta(0)) == {"postponed": 1}

    assert DeadLetter.objects.get().status == DeadLetter.Status.OPEN


def test_recovery_does_not_record_a_charge_for_another_amount(player, house) -> None:
    reservation = checkout(player, reserve(player, house, 2), "tok_timeout")
    Payment.objects.filter(reservation=reservation).update(amount=Decimal("99.00"))
    assert recover_stuck_checkouts(older_than=timedelta(0)) == {"postponed": 1}
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.PROCESSING
    assert Payment.objects.get(reservation=reservation).status == Payment.Status.PENDING


def test_a_failing_stuck_checkout_does_not_stop_recovery_of_the_next(player, make_house) -> None:
    broken_house, house = make_house(), make_house()
    poisoned = checkout(player, reserve(player, broken_house, 1), "tok_timeout")
    stuck = checkout(player, reserve(player, house, 2), "tok_timeout")
    Reservation.objects.filter(pk=poisoned.pk).update(processed_at=timezone.now() - HOUR)
    # Inconsistent counters: finishing the first one raises InvalidState, not a GatewayError.
    House.objects.filter(pk=broken_house.pk).update(tickets_reserved=0)
    assert recover_stuck_checkouts(older_than=timedelta(0)) == {
        "error": 1,
        Reservation.Status.COMPLETED: 1,
    }
    stuck.refresh_from_db()
    assert stuck.status == Reservation.Status.COMPLETED and numbers_of(stuck) == [1, 2]
    poisoned.refresh_from_db()
    assert poisoned.status == Reservation.Status.PROCESSING


def test_recovery_asks_the_gateway_the_payment_was_made_with(
    player, house, switch_to_http_gateway
) -> None:
    reservation = checkout(player, reserve(player, house, 2), "tok_timeout")
    switch_to_http_gateway()
    assert recover_stuck_checkouts(older_than=timedelta(0)) == {Reservation.Status.COMPLETED: 1}
    reservation.refresh_from_db()
    assert numbers_of(reservation) == [1, 2] and charges() == 1


def test_recovery_fails_a_checkout_the_gateway_never_charged(player, house) -> None:
    reservation = checkout(player, reserve(player, house, 2), "tok_unavailable")
    assert reservation.status == Reservation.Status.PROCESSING
    assert recover_stuck_checkouts(older_than=timedelta(0)) == {Reservation.Status.FAILED: 1}
    reservation.refresh_from_db()
    assert (reservation.status, reservation.failure_code) == ("failed", "checkout_abandoned")
    house.refresh_from_db()
    assert house.tickets_reserved == 0 and charges() == 0
    call_command("check_integrity")


def test_recovery_leaves_young_checkouts_alone(player, house) -> None:
    reservation = checkout(player, reserve(player, house, 1), "tok_timeout")
    assert recover_stuck_checkouts() == {}  # younger than CHECKOUT_STUCK_AFTER
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.PROCESSING


def test_player_banned_after_paying_gets_the_money_back_not_tickets(player, house) -> None:
    reservation = reserve(player, house, 2)
    PlayerProfile.objects.filter(user=player).update(account_status="banned")
    reservation = checkout_as_staff_saw_it(player, reservation)
    assert reservation.status == Reservation.Status.REFUNDED
    assert reservation.failure_code == "account_suspended"
    assert not Ticket.objects.exists()
    house.refresh_from_db()
    assert house.tickets_reserved == 0


def checkout_as_staff_saw_it(player, reservation: Reservation) -> Reservation:
    # The player was banned after reserving: start_checkout itself refuses them now,
    # so the checkout is started as if the ban landed between start and payment.
    PlayerProfile.objects.filter(user=player).update(account_status="active")
    start_checkout_without_running(player, reservation)
    PlayerProfile.objects.filter(user=player).update(account_status="banned")
    process_checkout.delay(str(reservation.pk))
    reservation.refresh_from_db()
    return reservation


def start_checkout_without_running(player, reservation: Reservation) -> None:
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = False
    try:
        start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    finally:
        celery_app.conf.task_always_eager = True


def test_house_paused_during_payment_refunds_and_keeps_inventory_until_then(player, house) -> None:
    reservation = checkout_closing_the_house_meanwhile(player, reserve(player, house, 2))
    assert reservation.status == Reservation.Status.REFUNDED
    assert reservation.failure_code == "house_not_on_sale"
    payment = Payment.objects.get(reservation=reservation)
    assert payment.refunds.get().status == "succeeded"
    assert SandboxLedgerEntry.objects.filter(kind="refund", status="succeeded").count() == 1
    house.refresh_from_db()
    assert (house.tickets_sold, house.tickets_reserved) == (0, 0)
    call_command("check_integrity")


def test_sales_ended_during_payment_refunds_instead_of_issuing(player, house) -> None:
    reservation = checkout_closing_the_house_meanwhile(
        player, reserve(player, house, 2), sales_end_at=timezone.now()
    )
    assert (reservation.status, reservation.failure_code) == ("refunded", "sales_closed")
    assert not Ticket.objects.exists()
    house.refresh_from_db()
    assert (house.tickets_sold, house.tickets_reserved) == (0, 0)
    call_command("check_integrity")


@pytest.mark.parametrize(
    "closed",
    [
        {"status": House.Status.PAUSED},
        {"deleted_at": timezone.now()},
        {"sales_end_at": timezone.now()},
        {"sales_start_at": timezone.now() + HOUR, "sales_end_at": timezone.now() + 2 * HOUR},
    ],
    ids=["paused", "deleted", "sales_ended", "sales_not_started"],
)
def test_checkout_of_a_house_not_on_sale_is_refused_before_any_charge(
    player, house, closed
) -> None:
    reservation = reserve(player, house, 2)
    House.objects.filter(pk=house.pk).update(**closed)
    with pytest.raises(domain.SalesClosed):
        start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.PENDING
    assert not Payment.objects.exists() and charges() == 0


def test_recovery_and_refund_retries_run_by_hand_as_commands(player, house) -> None:
    reservation = checkout(player, reserve(player, house, 1), "tok_timeout")
    call_command("retry_refunds")  # nothing due: harmless
    call_command("recover_stuck_checkouts", "--older-than-seconds", "0")
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.COMPLETED


def test_the_card_token_is_not_kept_after_the_charge(player, house) -> None:
    reservation = checkout(player, reserve(player, house, 1))
    assert Payment.objects.get(reservation=reservation).payment_token == ""


def test_a_charge_landing_after_recovery_abandoned_the_payment_alerts_staff(
    player, house, no_task_runs
) -> None:
    from payments.gateways import ChargeResult
    from payments.services import record_charge_result

    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    # Never charged as far as recovery can tell: it fails the checkout.
    recover_stuck_checkouts(older_than=timedelta(0), now=timezone.now() + timedelta(seconds=1))
    payment = Payment.objects.get()
    assert payment.status == Payment.Status.FAILED
    # Then the gateway's late charge is recorded.
    late = ChargeResult(
        status=ChargeResult.SUCCEEDED, reference="ch_late", amount=payment.amount, currency="EUR"
    )
    assert record_charge_result(payment_id=payment.pk, result=late).status == "failed"
    alert = OutboxEvent.objects.get(event_type="payment.needs_attention")
    assert alert.payload["gateway_reference"] == "ch_late"
    assert alert.payload["reason"] == "charged_after_abandonment"
