"""Refunds: retried with backoff, inventory released only after success, never twice."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from core.dead_letters import close_resolved_dead_letters
from core.models import DeadLetter, OutboxEvent
from lottery.models import House, HouseParticipant
from payments.models import Payment, Refund, SandboxLedgerEntry
from purchases.models import Ticket
from purchases.services.checkout import start_checkout
from purchases.services.refunds import refund_purchase, retry_due_refunds
from reservations.models import Reservation
from tests.purchases.conftest import checkout_closing_the_house_meanwhile, reserve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_retry_chain")]


def paid_but_not_issuable(player, house: House, quantity: int, token: str) -> Reservation:
    """The house is paused during the payment: the charge succeeds, issuing cannot."""
    return checkout_closing_the_house_meanwhile(player, reserve(player, house, quantity), token)


def make_due(refund: Refund) -> None:
    Refund.objects.filter(pk=refund.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def held(house: House) -> tuple[int, int, int]:
    house.refresh_from_db()
    return house.tickets_reserved, house.participants_count, HouseParticipant.objects.count()


def test_refund_failing_twice_releases_inventory_only_after_it_succeeds(
    player, house, settings
) -> None:
    settings.SANDBOX_REFUND_FAILURES = 2
    reservation = paid_but_not_issuable(player, house, 3, "tok_refund_fails")
    refund = Refund.objects.get()
    for attempt in (1, 2):
        refund.refresh_from_db()
        reservation.refresh_from_db()
        assert (refund.status, refund.attempts) == (Refund.Status.FAILED, attempt)
        assert refund.next_attempt_at > timezone.now()  # backing off
        assert reservation.status == Reservation.Status.REFUND_PENDING
        assert held(house) == (3, 1, 1)  # still held while the money is out
        call_command("check_integrity")
        assert retry_due_refunds() == 0  # not due yet
        make_due(refund)
        assert retry_due_refunds() == 1
    refund.refresh_from_db()
    reservation.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert reservation.status == Reservation.Status.REFUNDED
    assert held(house) == (0, 0, 0)
    assert SandboxLedgerEntry.objects.filter(kind="refund", status="succeeded").count() == 1
    assert OutboxEvent.objects.filter(event_type="refund.succeeded").count() == 1
    call_command("check_integrity")


def test_refund_that_always_fails_ends_in_needs_attention_visible_to_staff(
    player, house, settings, staff_client
) -> None:
    settings.REFUND_MAX_ATTEMPTS = 3
    reservation = paid_but_not_issuable(player, house, 2, "tok_refund_always_fails")
    refund = Refund.objects.get()
    for _ in range(2):
        make_due(refund)
        retry_due_refunds()
    refund.refresh_from_db()
    assert (refund.status, refund.attempts) == (Refund.Status.NEEDS_ATTENTION, 3)
    assert "refund_rejected_by_issuer" in refund.last_error
    make_due(refund)
    assert retry_due_refunds() == 0  # no longer retried by beat
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.REFUND_PENDING
    assert held(house)[0] == 2  # the inventory stays held: the money is not back
    assert OutboxEvent.objects.filter(event_type="refund.needs_attention").count() == 1

    page = staff_client.get(
        reverse("admin:payments_refund_changelist"), {"status": "needs_attention"}
    )
    assert page.status_code == 200
    assert f">{refund.pk}<" in page.content.decode()


def test_crash_after_the_gateway_refunded_is_retried_to_one_refund(
    player, house, failpoints_on
) -> None:
    failpoints_on("refund.after_gateway", action="raise", times=1)
    reservation = paid_but_not_issuable(player, house, 2, "tok_ok")
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.REFUNDED
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    assert SandboxLedgerEntry.objects.filter(kind="refund").count() == 1
    assert SandboxLedgerEntry.objects.filter(kind="charge").count() == 1
    assert held(house) == (0, 0, 0)
    call_command("check_integrity")


def test_refund_purchase_refunds_tickets_and_sold_counter_once(player, house) -> None:
    reservation = reserve(player, house, 3)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    first = refund_purchase(reservation=reservation, reason="lottery cancelled")
    again = refund_purchase(reservation=reservation, reason="lottery cancelled")
    assert first.pk == again.pk
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.REFUNDED
    assert set(Ticket.objects.values_list("status", flat=True)) == {Ticket.Status.REFUNDED}
    house.refresh_from_db()
    assert (house.tickets_sold, house.participants_count) == (0, 0)
    assert house.next_ticket_number == 4  # numbers are never reused
    payment = Payment.objects.get()
    assert payment.refunded_total == payment.amount
    assert SandboxLedgerEntry.objects.filter(kind="refund").count() == 1
    call_command("check_integrity")


def test_a_sandbox_payment_is_refunded_by_sandbox_after_the_gateway_setting_changed(
    player, house, switch_to_http_gateway
) -> None:
    reservation = reserve(player, house, 2)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    switch_to_http_gateway()
    refund = refund_purchase(reservation=reservation, reason="lottery cancelled")
    refund.refresh_from_db()
    reservation.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED, refund.last_error
    assert reservation.status == Reservation.Status.REFUNDED
    assert SandboxLedgerEntry.objects.filter(kind="refund").count() == 1


def test_tickets_stay_active_until_a_staff_refund_succeeds(player, house, settings) -> None:
    settings.SANDBOX_REFUND_FAILURES = 1
    reservation = reserve(player, house, 2)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_refund_fails")
    refund = refund_purchase(reservation=reservation.pk, reason="staff")
    refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    assert set(Ticket.objects.values_list("status", flat=True)) == {Ticket.Status.ACTIVE}
    house.refresh_from_db()
    assert house.tickets_sold == 2
    make_due(refund)
    retry_due_refunds()
    house.refresh_from_db()
    assert house.tickets_sold == 0
    assert set(Ticket.objects.values_list("status", flat=True)) == {Ticket.Status.REFUNDED}
    call_command("check_integrity")


def test_staff_refund_a_purchase_from_the_admin(player, house, staff, staff_client) -> None:
    reservation = reserve(player, house, 2)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    client = staff_client
    payment = Payment.objects.get()
    selection = {"action": "refund_purchases", "_selected_action": [payment.pk]}
    changelist = reverse("admin:payments_payment_changelist")
    asked = client.post(changelist, selection)
    assert asked.status_code == 200  # the page asking for the reason
    assert not Refund.objects.exists()
    response = client.post(changelist, {**selection, "post": "yes", "reason": "buyer asked"})
    assert response.status_code == 302
    refund = Refund.objects.get()
    assert (refund.status, refund.requested_by) == (Refund.Status.SUCCEEDED, staff)
    assert refund.reason == "buyer asked"
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.REFUNDED


def test_refunds_never_exceed_the_payment_even_when_raced(player, house) -> None:
    import threading

    from django.db import IntegrityError, connection, transaction

    from core import exceptions as domain
    from payments.services import open_refund

    reservation = reserve(player, house, 2)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    payment = Payment.objects.get()
    barrier = threading.Barrier(5)
    outcomes: list[str] = []

    def ask_for_everything() -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                locked = Payment.objects.select_for_update().get(pk=payment.pk)
                open_refund(payment=locked, amount=locked.amount, reason="race")
            outcomes.append("opened")
        except domain.InvalidState:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=ask_for_everything) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["opened", "refused", "refused", "refused", "refused"]
    payment.refresh_from_db()
    assert payment.refunded_total == payment.amount
    # And the database itself refuses more, whatever the Python says.
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(refunded_total=payment.amount + 1)


def test_a_refunded_purchase_says_why_and_lists_no_valid_tickets(player, house) -> None:
    from tests.conftest import client_for

    reservation = reserve(player, house, 2)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    refund_purchase(reservation=reservation, reason="staff refund")
    detail = client_for(player).get(f"/api/v1/reservations/{reservation.pk}/").json()
    assert detail["status"] == "refunded"
    assert detail["failure_code"] == "purchase_refunded"
    assert detail["tickets"] == []


def test_a_refund_frees_the_players_place_under_the_cap_in_redis(
    player, make_player, make_house
) -> None:
    from reservations.services import reserve_tickets, sync_inventory

    house = make_house(participant_cap=1)
    sync_inventory()
    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    refund_purchase(reservation=reservation, reason="staff refund")
    # The only place is free again: Redis must not turn the next player away.
    newcomer = reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)
    assert newcomer.status == 201


def test_dead_letter_of_a_refund_attempt_closes_once_the_refund_succeeded(
    player, house, settings
) -> None:
    settings.SANDBOX_REFUND_FAILURES = 1
    paid_but_not_issuable(player, house, 1, "tok_refund_fails")
    refund = Refund.objects.get()
    letter = DeadLetter.objects.create(
        task_name="refunds.attempt", args=[refund.pk], exception_type="x", last_error="lost"
    )
    assert close_resolved_dead_letters() == 0  # failed: the refund job still owns it
    make_due(refund)
    retry_due_refunds()
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED

    assert close_resolved_dead_letters() == 1

    letter.refresh_from_db()
    assert (letter.status, letter.resolution) == ("resolved", f"refund {refund.pk} succeeded")
