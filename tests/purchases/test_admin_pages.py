"""Staff can open every payments and reliability admin page (read-only)."""

import pytest
from django.urls import reverse

from core.models import DeadLetter, OutboxEvent
from payments.models import Payment, Refund, SandboxLedgerEntry
from purchases.services.checkout import start_checkout
from purchases.services.refunds import refund_purchase
from tests.purchases.conftest import reserve

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_can_open_payments_refunds_ledger_outbox_and_dead_letters(
    player, house, staff_client
) -> None:
    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    refund_purchase(reservation=reservation, reason="staff")
    DeadLetter.objects.create(task_name="x", exception_type="E", last_error="boom")
    client = staff_client
    for model in (Payment, Refund, SandboxLedgerEntry, OutboxEvent, DeadLetter):
        meta = model._meta
        listing = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert listing.status_code == 200, meta.model_name
        obj = model.objects.first()
        page = client.get(
            reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
        )
        assert page.status_code == 200, meta.model_name
    payment_page = client.get(
        reverse("admin:payments_payment_change", args=[Payment.objects.get().pk])
    ).content.decode()
    assert "payment_token" not in payment_page


def test_players_cannot_see_dead_letters(player, client) -> None:
    client.force_login(player)
    response = client.get(reverse("admin:core_deadletter_changelist"))
    assert response.status_code == 302  # to the admin login: not staff
