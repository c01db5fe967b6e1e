"""Twenty purchases of one house completing at once get disjoint, contiguous number blocks."""

import threading

import pytest
from django.core.management import call_command
from django.db import connection

from payments.models import SandboxLedgerEntry
from purchases.models import Ticket
from purchases.services.checkout import process_checkout, start_checkout
from reservations.models import Reservation
from tests.purchases.conftest import reserve

RACERS = 20


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_task_runs")
def test_twenty_purchases_completing_at_once_get_disjoint_contiguous_blocks(
    make_player, house
) -> None:
    reservations = []
    for index in range(RACERS):
        player = make_player()
        reservation = reserve(player, house, 1 + index % 4)
        start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
        reservations.append(reservation)
    assert Reservation.objects.filter(status="processing").count() == RACERS

    barrier = threading.Barrier(RACERS)
    errors: list[BaseException] = []

    def complete(reservation: Reservation) -> None:
        try:
            barrier.wait(timeout=30)
            process_checkout(reservation_id=reservation.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=complete, args=(r,)) for r in reservations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors

    blocks = []
    for reservation in reservations:
        reservation.refresh_from_db()
        assert reservation.status == Reservation.Status.COMPLETED
        numbers = sorted(
            Ticket.objects.filter(reservation=reservation).values_list("ticket_number", flat=True)
        )
        assert len(numbers) == reservation.quantity
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # contiguous
        blocks.append(numbers)
    every_number = sorted(n for block in blocks for n in block)
    total = sum(r.quantity for r in reservations)
    assert every_number == list(range(1, total + 1))  # disjoint, no gaps, no duplicates
    house.refresh_from_db()
    assert (house.tickets_sold, house.tickets_reserved) == (total, 0)
    assert house.next_ticket_number == total + 1
    assert SandboxLedgerEntry.objects.filter(kind="charge").count() == RACERS
    call_command("check_integrity")
