"""A checkout batch charges its members at a remote gateway at once, with every guarantee kept.

The http gateway's latency is network wait: one after another, a batch of 20
at 300 ms would hold its last buyer 6 s and drain a hot house at 3 purchases/s.
These tests drive a real HTTP payment service (``FakePaymentService``) and
check that the calls overlap, that a slow member stays an unknown outcome of
its own, and that an unexpected error in one call still records every charge
the others made.
"""

from collections.abc import Iterator

import pytest

from core.failpoints import InjectedFault
from payments.models import Payment
from purchases.services.checkout import process_checkout
from reservations.models import Reservation
from reservations.selectors import integrity_mismatches
from tests.payments.fake_payment_service import FakePaymentService
from tests.purchases.test_batched_checkout import (
    assert_blocks_unique_and_contiguous,
    queue_checkouts,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_task_runs"),
]

CONCURRENCY = 4


@pytest.fixture
def service(settings: object) -> Iterator[FakePaymentService]:
    fake = FakePaymentService().start()
    settings.PAYMENT_GATEWAY = "http"
    settings.PAYMENT_SERVICE_URL = fake.url
    settings.PAYMENT_SERVICE_TIMEOUT = 1.0
    settings.PAYMENT_SERVICE_RETRIES = 0
    settings.PAYMENT_CHARGE_CONCURRENCY = CONCURRENCY
    yield fake
    fake.stop()


def statuses(reservations: list[Reservation]) -> list[str]:
    return [Reservation.objects.get(pk=r.pk).status for r in reservations]


def test_a_batch_has_up_to_the_concurrency_of_charges_in_flight_at_once(
    service: FakePaymentService, make_player, house
) -> None:
    service.delay = 0.5  # long enough for every thread's call to overlap, even on a busy machine
    reservations = queue_checkouts(make_player, house, ["tok_ok"] * 9)

    assert process_checkout(reservation_id=reservations[0].pk) == "completed"

    assert service.max_in_flight == CONCURRENCY
    assert statuses(reservations) == ["completed"] * 9
    assert sorted(service.charges) == sorted(str(r.pk) for r in reservations)  # one each
    assert_blocks_unique_and_contiguous(reservations)
    assert integrity_mismatches() == []


def test_a_concurrency_of_one_charges_one_after_another(
    settings: object, service: FakePaymentService, make_player, house
) -> None:
    settings.PAYMENT_CHARGE_CONCURRENCY = 1
    service.delay = 0.05
    reservations = queue_checkouts(make_player, house, ["tok_ok"] * 4)

    assert process_checkout(reservation_id=reservations[0].pk) == "completed"

    assert service.max_in_flight == 1
    assert statuses(reservations) == ["completed"] * 4


def test_a_member_that_times_out_is_left_to_its_own_task_and_the_others_finish(
    service: FakePaymentService, make_player, house
) -> None:
    service.token_delays = {"tok_slow": 2.0}  # past the 1 s timeout; the service charges it
    first, slow, *others = queue_checkouts(
        make_player, house, ["tok_ok", "tok_slow", "tok_declined", "tok_ok", "tok_ok"]
    )
    declined = others[0]

    assert process_checkout(reservation_id=first.pk) == "completed"

    assert statuses([first, *others[1:]]) == ["completed", "completed", "completed"]
    assert Reservation.objects.get(pk=declined.pk).failure_code == "card_declined"
    # Its outcome is unknown: still processing, its charge attempted and not recorded.
    assert Reservation.objects.get(pk=slow.pk).status == "processing"
    payment = Payment.objects.get(reservation=slow)
    assert payment.status == "pending" and payment.charge_attempted_at is not None
    assert_blocks_unique_and_contiguous([first, *others[1:]])

    # Its own task asks again with the same key and finds the one charge made.
    service.token_delays = {}
    assert process_checkout(reservation_id=slow.pk) == "completed"
    assert len(service.charges) == 5
    assert_blocks_unique_and_contiguous([first, slow, *others[1:]])
    assert integrity_mismatches() == []


def test_an_unexpected_error_in_one_call_comes_after_the_others_charges_are_recorded(
    service: FakePaymentService, failpoints_on, make_player, house
) -> None:
    service.delay = 0.1
    reservations = queue_checkouts(make_player, house, ["tok_ok"] * 6)
    failpoints_on("checkout.after_charge", action="raise", times=1)

    with pytest.raises(InjectedFault):
        process_checkout(reservation_id=reservations[0].pk)

    # Six charges were made; the five whose calls returned are recorded, the one
    # that raised is an unknown outcome for its retry or for recovery to settle.
    assert len(service.charges) == 6
    payments = Payment.objects.filter(reservation__in=reservations)
    assert payments.filter(status="succeeded").count() == 5
    assert payments.filter(status="pending", charge_attempted_at__isnull=False).count() == 1
    assert statuses(reservations) == ["processing"] * 6  # nothing issued half-way

    # Each one's own task finishes it: the recorded ones without charging again.
    for reservation in reservations:
        assert process_checkout(reservation_id=reservation.pk) == "completed"
    assert len(service.charges) == 6
    assert_blocks_unique_and_contiguous(reservations)
    assert integrity_mismatches() == []
