"""One checkout task charges the queued checkouts of its house and issues them in one block.

The batch keeps every guarantee of a lone checkout: unique contiguous numbers
under racing tasks, one charge per payment, and a member that fails (declined,
gateway down, paid but no longer issuable) settles on its own without
stopping the others.
"""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from core.models import OutboxEvent
from lottery.models import House, PlayerProfile
from payments.gateways import GatewayUnavailable
from payments.models import Payment, Refund, SandboxLedgerEntry
from purchases.models import Ticket
from purchases.services.checkout import BATCH_SIZE, process_checkout, start_checkout
from reservations.models import Reservation
from reservations.selectors import integrity_mismatches
from tests.purchases.conftest import reserve

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_task_runs"),
]


def queue_checkouts(make_player, house: House, tokens: list[str]) -> list[Reservation]:
    """Start a checkout per token, oldest first; nobody runs their tasks."""
    reservations = []
    for index, token in enumerate(tokens):
        player = make_player()
        reservation = reserve(player, house, 1 + index % 3)
        start_checkout(player=player, reservation_id=reservation.pk, payment_token=token)
        reservations.append(reservation)
    return reservations


def numbers_of(reservation: Reservation) -> list[int]:
    return sorted(
        Ticket.objects.filter(reservation=reservation).values_list("ticket_number", flat=True)
    )


def charges_by_key() -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in SandboxLedgerEntry.objects.filter(kind="charge").values_list(
        "idempotency_key", flat=True
    ):
        counts[key] = counts.get(key, 0) + 1
    return counts


def assert_blocks_unique_and_contiguous(reservations: list[Reservation]) -> None:
    every_number = []
    for reservation in reservations:
        numbers = numbers_of(reservation)
        assert len(numbers) == reservation.quantity
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        every_number += numbers
    assert sorted(every_number) == list(range(1, len(every_number) + 1))


def test_one_task_issues_the_queued_checkouts_of_its_house_in_one_block(make_player, house) -> None:
    reservations = queue_checkouts(make_player, house, ["tok_ok"] * 6)
    assert process_checkout(reservation_id=reservations[0].pk) == "completed"
    for reservation in reservations:
        reservation.refresh_from_db()
        assert reservation.status == Reservation.Status.COMPLETED
    assert_blocks_unique_and_contiguous(reservations)
    # Numbered in checkout order, each purchase with its own two events.
    firsts = [numbers_of(r)[0] for r in reservations]
    assert firsts == sorted(firsts)
    assert OutboxEvent.objects.filter(event_type="tickets.issued").count() == 6
    assert OutboxEvent.objects.filter(event_type="reservation.completed").count() == 6
    # The others' own tasks find them settled and change nothing.
    for reservation in reservations[1:]:
        assert process_checkout(reservation_id=reservation.pk) == "completed"
    assert charges_by_key() == {str(r.pk): 1 for r in reservations}
    house.refresh_from_db()
    sold = sum(r.quantity for r in reservations)
    assert (house.tickets_sold, house.tickets_reserved, house.next_ticket_number) == (
        sold,
        0,
        sold + 1,
    )
    assert integrity_mismatches() == []


def test_a_batch_never_takes_more_than_its_size_or_another_house(make_player, make_house) -> None:
    house, other = make_house(), make_house()
    ours = queue_checkouts(make_player, house, ["tok_ok"] * (BATCH_SIZE + 3))
    theirs = queue_checkouts(make_player, other, ["tok_ok"] * 2)
    process_checkout(reservation_id=ours[0].pk)
    # The task drains its house in batches: BATCH_SIZE in one issuing block, then the rest.
    statuses = [Reservation.objects.get(pk=r.pk).status for r in ours]
    assert statuses.count(Reservation.Status.COMPLETED) == BATCH_SIZE + 3
    blocks = Ticket.objects.filter(house=house).values_list("issued_at", "reservation_id")
    reservations_per_block: dict = {}
    for issued_at, reservation_id in blocks:
        reservations_per_block.setdefault(issued_at, set()).add(reservation_id)
    assert sorted(len(ids) for ids in reservations_per_block.values()) == [3, BATCH_SIZE]
    first_block = min(reservations_per_block)
    assert reservations_per_block[first_block] == {r.pk for r in ours[:BATCH_SIZE]}
    assert {Reservation.objects.get(pk=r.pk).status for r in theirs} == {"processing"}
    assert not Payment.objects.filter(
        reservation__in=theirs, charge_attempted_at__isnull=False
    ).exists()


def test_a_batch_where_members_fail_issues_the_others_and_settles_each_failure(
    make_player, house
) -> None:
    tokens = ["tok_ok", "tok_declined", "tok_ok", "tok_unavailable", "tok_ok", "tok_ok"]
    reservations = queue_checkouts(make_player, house, tokens)
    first, declined, banned, unavailable, fourth, fifth = reservations
    # Paid, but the player was banned while the payment was in flight: refund, no tickets.
    PlayerProfile.objects.filter(user_id=banned.user_id).update(account_status="banned")

    assert process_checkout(reservation_id=first.pk) == "completed"

    statuses = {r.pk: Reservation.objects.get(pk=r.pk) for r in reservations}
    assert statuses[first.pk].status == statuses[fourth.pk].status == "completed"
    assert statuses[fifth.pk].status == "completed"
    assert statuses[declined.pk].status == "failed"
    assert statuses[declined.pk].failure_code == "card_declined"
    assert statuses[banned.pk].status == "refund_pending"
    assert statuses[banned.pk].failure_code == "account_suspended"
    assert Refund.objects.filter(payment__reservation=banned).count() == 1
    # The gateway was down for this one: its own task (retry with the same key) finishes it.
    assert statuses[unavailable.pk].status == "processing"
    assert Payment.objects.get(reservation=unavailable).status == "pending"
    with pytest.raises(GatewayUnavailable):
        process_checkout(reservation_id=unavailable.pk)

    issued = [first, fourth, fifth]
    assert_blocks_unique_and_contiguous(issued)
    assert not Ticket.objects.filter(reservation__in=[declined, banned, unavailable]).exists()
    # One charge per payment the gateway took; none for the one it never reached.
    assert charges_by_key() == {str(r.pk): 1 for r in [first, declined, banned, fourth, fifth]}
    house.refresh_from_db()
    held = sum(r.quantity for r in [banned, unavailable])  # refund pending, still paying
    assert house.tickets_sold == sum(r.quantity for r in issued)
    assert house.tickets_reserved == held
    assert integrity_mismatches() == []


def test_racing_batches_give_unique_contiguous_numbers_and_one_charge_each(
    make_player, house
) -> None:
    reservations = queue_checkouts(make_player, house, ["tok_ok"] * 40)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def run(batch: list[Reservation]) -> None:
        try:
            barrier.wait(timeout=30)
            for reservation in batch:  # every task runs, as a worker would run them all
                process_checkout(reservation_id=reservation.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(reservations[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    for reservation in reservations:
        reservation.refresh_from_db()
        assert reservation.status == Reservation.Status.COMPLETED
    assert_blocks_unique_and_contiguous(reservations)
    assert charges_by_key() == {str(r.pk): 1 for r in reservations}
    assert Ticket.objects.count() == sum(r.quantity for r in reservations)
    assert integrity_mismatches() == []


def test_a_second_batch_takes_the_checkouts_the_first_has_not_claimed(make_player, house) -> None:
    reservations = queue_checkouts(make_player, house, ["tok_ok"] * (BATCH_SIZE + 5))
    # A batch in flight elsewhere has claimed the oldest ones but not finished them.
    in_flight = reservations[:BATCH_SIZE]
    Payment.objects.filter(reservation__in=in_flight).update(charge_attempted_at=timezone.now())
    assert process_checkout(reservation_id=reservations[-1].pk) == "completed"
    statuses = {r.pk: Reservation.objects.get(pk=r.pk).status for r in reservations}
    assert {statuses[r.pk] for r in reservations[BATCH_SIZE:]} == {"completed"}
    assert {statuses[r.pk] for r in in_flight} == {"processing"}
    assert not SandboxLedgerEntry.objects.filter(
        idempotency_key__in=[str(r.pk) for r in in_flight]
    ).exists()
