"""core.locks: one order (house -> reservation -> payment -> refund), one strength, one door.

The purchase paths are where several of these rows are locked at once, so the
helper is tested here, with their rows.
"""

import re
import threading
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.locks import LOCK_ORDER, SkipLocked, lock_rows
from lottery.models import House
from payments.models import Payment, Refund
from purchases.selectors import integrity_mismatches
from purchases.services.checkout import process_checkout, start_checkout
from purchases.services.refunds import attempt_refund, refund_purchase
from reservations.models import Reservation
from reservations.services import cancel_reservation, expire_due_reservations
from tests.purchases.conftest import reserve

ROOT = Path(__file__).resolve().parents[2]
LOCKED_TABLES = {
    "lottery.House": '"lottery_house"',
    "reservations.Reservation": '"reservations_reservation"',
    "payments.Payment": '"payments_payment"',
    "payments.Refund": '"payments_refund"',
}
# select_for_update outside core/locks.py, on rows that are not in LOCK_ORDER.
OTHER_ROWS = {
    "core/outbox.py": "outbox events",
    "core/dead_letters.py": "dead letters",
    "payments/gateways/sandbox.py": "the sandbox gateway's own ledger",
}


@pytest.fixture
def one_row_of_each(player, house) -> tuple[House, Reservation, Payment, Refund]:
    reservation = reserve(player, house, 2)
    payment = Payment.objects.create(
        reservation=reservation,
        amount=reservation.total_price,
        currency=reservation.currency,
        gateway="sandbox",
        idempotency_key=str(reservation.pk),
        status=Payment.Status.SUCCEEDED,
        refunded_total=reservation.total_price,
    )
    refund = Refund.objects.create(payment=payment, amount=payment.amount, reason="test")
    return house, reservation, payment, refund


def test_rows_are_locked_house_reservation_payment_refund_whatever_the_argument_order(
    one_row_of_each,
) -> None:
    house, reservation, payment, refund = one_row_of_each
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        refunds, payments, reservations, houses = lock_rows(
            Refund.objects.filter(pk=refund.pk),
            Payment.objects.filter(pk=payment.pk),
            Reservation.objects.filter(pk=reservation.pk),
            House.objects.filter(pk=house.pk).values_list("pk", flat=True),
        )
    assert (refunds, payments, reservations, houses) == (
        [refund],
        [payment],
        [reservation],
        [house.pk],
    )
    locking = [q["sql"] for q in queries.captured_queries if "FOR " in q["sql"]]
    assert len(locking) == 4
    assert all(re.search(r"FOR NO KEY UPDATE OF \S+$", sql) for sql in locking), locking
    locked_tables = [
        next(label for label, table in LOCKED_TABLES.items() if f"FROM {table}" in sql)
        for sql in locking
    ]
    assert locked_tables == [label for label in LOCK_ORDER if label in LOCKED_TABLES]


@pytest.mark.django_db(transaction=True)
def test_skip_locked_leaves_out_rows_another_transaction_holds(house, make_player) -> None:
    first = reserve(make_player(), house)
    second = reserve(make_player(), house)
    with transaction.atomic():
        [held] = lock_rows(Reservation.objects.filter(pk=first.pk))
        assert held == [first]
        seen: list[list[object]] = []

        def sweep() -> None:
            try:
                with transaction.atomic():
                    [rows] = lock_rows(
                        SkipLocked(Reservation.objects.order_by("pk").values_list("pk", flat=True))
                    )
                    seen.append(rows)
            finally:
                connection.close()

        thread = threading.Thread(target=sweep)
        thread.start()
        thread.join(timeout=30)
    assert seen == [[second.pk]]


def test_two_querysets_of_one_model_are_refused(house) -> None:
    with transaction.atomic(), pytest.raises(ValueError, match="at most one queryset per model"):
        lock_rows(House.objects.filter(pk=house.pk), House.objects.filter(pk=house.pk))


def test_a_model_not_in_the_order_is_refused() -> None:
    from core.models import OutboxEvent

    with pytest.raises(ValueError, match=r"not in core\.locks\.LOCK_ORDER"):
        lock_rows(OutboxEvent.objects.none())


def test_nothing_but_core_locks_takes_row_locks_on_the_ordered_models() -> None:
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.split("/")[0] in {".venv", "tests", "bench", "scripts"}:
            continue
        if relative == "core/locks.py" or "/migrations/" in relative:
            continue
        source = path.read_text()
        if "select_for_update" not in source and "FOR UPDATE" not in source.upper():
            continue
        if relative in OTHER_ROWS:
            continue
        offenders.append(relative)
    sql_files = [
        path.relative_to(ROOT).as_posix()
        for path in ROOT.rglob("*.sql")
        if ".venv" not in path.parts and re.search(r"FOR\s+(NO\s+KEY\s+)?UPDATE", path.read_text())
    ]
    assert offenders == [] and sql_files == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_task_runs")
def test_checkout_expiry_cancel_and_refund_racing_on_one_house_never_deadlock(
    make_player, house
) -> None:
    buyers = [make_player() for _ in range(4)]
    paying = []
    for buyer in buyers:
        reservation = reserve(buyer, house, 2)
        start_checkout(player=buyer, reservation_id=reservation.pk, payment_token="tok_ok")
        paying.append(reservation)
    late = [reserve(make_player(), house, 2) for _ in range(2)]
    Reservation.objects.filter(pk__in=[r.pk for r in late]).update(
        expires_at=timezone.now() - timezone.timedelta(minutes=1)
    )
    leaving = [(player, reserve(player, house, 2)) for player in (make_player(), make_player())]
    refunded_buyer = make_player()
    bought = reserve(refunded_buyer, house, 2)
    start_checkout(player=refunded_buyer, reservation_id=bought.pk, payment_token="tok_ok")
    process_checkout(reservation_id=bought.pk)
    refund = refund_purchase(reservation=bought.pk, reason="race", actor=None)

    work = [lambda r=r: process_checkout(reservation_id=r.pk) for r in paying]
    work.append(expire_due_reservations)
    work += [lambda p=p, r=r: cancel_reservation(player=p, reservation_id=r.pk) for p, r in leaving]
    work.append(lambda: attempt_refund(refund_id=refund.pk))
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(job) -> None:
        try:
            barrier.wait(timeout=30)
            job()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    statuses = dict(Reservation.objects.values_list("pk", "status"))
    assert {statuses[r.pk] for r in paying} == {Reservation.Status.COMPLETED}
    assert {statuses[r.pk] for r in late} == {Reservation.Status.EXPIRED}
    assert {statuses[r.pk] for _, r in leaving} == {Reservation.Status.CANCELLED}
    assert statuses[bought.pk] == Reservation.Status.REFUNDED
    house.refresh_from_db()
    assert (house.tickets_sold, house.tickets_reserved) == (8, 0)
    assert integrity_mismatches() == []
