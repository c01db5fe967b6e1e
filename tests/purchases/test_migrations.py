"""``migrate`` from the database as it was before purchases existed keeps every ticket,
payment and refund: Ticket moved from lottery to purchases in Django's state only and
its table was renamed (``lottery_ticket`` -> ``purchases_ticket``), rows untouched."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from payments.models import Payment, Refund
from purchases.models import Ticket
from reservations.models import Reservation

# The last migrations before Ticket moved (issue 8); purchases did not exist.
BEFORE_THE_MOVE = [("lottery", "0005_participant_drop_duplicate_indexes"), ("purchases", None)]


def _migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


def _latest() -> list[tuple[str, str | None]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_migrating_from_before_the_move_keeps_every_ticket_payment_and_refund() -> None:
    latest = _latest()
    try:
        # The state of exactly what is applied then: apps built on later lottery migrations
        # (draws, watchlist) are unapplied with them.
        loader = _migrate(BEFORE_THE_MOVE).loader
        old = loader.project_state(sorted(loader.applied_migrations)).apps
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('lottery_ticket') IS NOT NULL")
            assert cursor.fetchone() == (True,)
        now = timezone.now()
        user = old.get_model("auth", "User").objects.create(username="old-buyer")
        house = old.get_model("lottery", "House").objects.create(
            title="Old house",
            city="Porto",
            property_value=Decimal("350000.00"),
            ticket_price=Decimal("10.00"),
            total_tickets=100,
            tickets_sold=3,
            next_ticket_number=4,
            status="active",
            sales_start_at=now - timedelta(days=1),
            sales_end_at=now + timedelta(days=1),
        )
        reservation = old.get_model("reservations", "Reservation").objects.create(
            house_id=house.pk,
            user_id=user.pk,
            quantity=3,
            unit_price=Decimal("10.00"),
            total_price=Decimal("30.00"),
            currency="EUR",
            status="completed",
            expires_at=now,
        )
        payment = old.get_model("payments", "Payment").objects.create(
            reservation_id=reservation.pk,
            amount=Decimal("30.00"),
            currency="EUR",
            gateway="sandbox",
            idempotency_key=str(reservation.pk),
            gateway_reference="ch_old",
            status="succeeded",
            refunded_total=Decimal("10.00"),
        )
        refund = old.get_model("payments", "Refund").objects.create(
            payment_id=payment.pk, amount=Decimal("10.00"), reason="staff", status="failed"
        )
        old_ticket = old.get_model("lottery", "Ticket")
        tickets = [
            old_ticket.objects.create(
                house_id=house.pk,
                ticket_number=number,
                owner_id=user.pk,
                reservation_id=reservation.pk,
                payment_id=payment.pk,
                status="refunded" if number == 3 else "active",
                issued_at=now,
                refunded_at=now if number == 3 else None,
            )
            for number in (1, 2, 3)
        ]

        _migrate(latest)

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT to_regclass('lottery_ticket') IS NULL,"
                " to_regclass('purchases_ticket') IS NOT NULL"
            )
            assert cursor.fetchone() == (True, True)
        moved = list(
            Ticket.objects.order_by("ticket_number").values_list(
                "pk",
                "house_id",
                "ticket_number",
                "owner_id",
                "reservation_id",
                "payment_id",
            )
        )
        assert moved == [
            (t.pk, house.pk, t.ticket_number, user.pk, reservation.pk, payment.pk) for t in tickets
        ]
        assert list(Ticket.objects.order_by("ticket_number").values_list("status", flat=True)) == [
            Ticket.Status.ACTIVE,
            Ticket.Status.ACTIVE,
            Ticket.Status.REFUNDED,
        ]
        assert Ticket.objects.get(ticket_number=3).refunded_at is not None
        assert Reservation.objects.get(pk=reservation.pk).tickets.count() == 3
        kept_payment = Payment.objects.get(pk=payment.pk)
        assert (kept_payment.reservation_id, kept_payment.amount, kept_payment.status) == (
            reservation.pk,
            Decimal("30.00"),
            Payment.Status.SUCCEEDED,
        )
        assert kept_payment.refunded_total == Decimal("10.00")
        kept_refund = Refund.objects.get(pk=refund.pk)
        assert (kept_refund.payment_id, kept_refund.amount, kept_refund.status) == (
            payment.pk,
            Decimal("10.00"),
            Refund.Status.FAILED,
        )
        # The constraints came along with the table: a number is still unique per house.
        with pytest.raises(Exception, match="ticket_number_unique_per_house"):
            Ticket.objects.create(
                house_id=house.pk,
                ticket_number=1,
                owner_id=user.pk,
                reservation_id=reservation.pk,
                payment_id=payment.pk,
                issued_at=now,
            )
    finally:
        _migrate(latest)
