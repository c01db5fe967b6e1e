"""The checkout endpoint's contract: 202, Idempotency-Key, problem JSON, polling the result."""

import pytest
from django.utils import timezone

from lottery.models import House
from payments.models import Payment, SandboxLedgerEntry
from tests.conftest import client_for
from tests.purchases.conftest import reserve

pytestmark = pytest.mark.django_db(transaction=True)


def url(reservation_id: object) -> str:
    return f"/api/v1/reservations/{reservation_id}/checkout/"


def test_checkout_answers_202_then_the_reservation_shows_its_tickets(player, house) -> None:
    reservation = reserve(player, house, 2)
    client = client_for(player)
    response = client.post(
        url(reservation.pk), {"payment_token": "tok_ok"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 202
    assert response.json() == {"id": str(reservation.pk), "status": "processing"}
    detail = client.get(f"/api/v1/reservations/{reservation.pk}/").json()
    assert detail["status"] == "completed" and detail["tickets"] == [1, 2]


def test_a_repeated_checkout_with_the_same_key_replays_and_charges_once(player, house) -> None:
    reservation = reserve(player, house, 1)
    client = client_for(player)
    for _ in range(2):
        response = client.post(
            url(reservation.pk),
            {"payment_token": "tok_ok"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="double-click",
        )
        assert response.status_code == 202
    assert response["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1
    assert SandboxLedgerEntry.objects.count() == 1


def test_a_second_checkout_with_another_key_is_invalid_state(player, house) -> None:
    reservation = reserve(player, house, 1)
    client = client_for(player)
    client.post(
        url(reservation.pk), {"payment_token": "tok_ok"}, format="json", HTTP_IDEMPOTENCY_KEY="a"
    )
    response = client.post(
        url(reservation.pk), {"payment_token": "tok_ok"}, format="json", HTTP_IDEMPOTENCY_KEY="b"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_state"


def test_checkout_after_sales_ended_is_409_sales_closed_and_charges_nothing(player, house) -> None:
    reservation = reserve(player, house, 1)
    House.objects.filter(pk=house.pk).update(sales_end_at=timezone.now())
    response = client_for(player).post(
        url(reservation.pk), {"payment_token": "tok_ok"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "sales_closed"
    assert not Payment.objects.exists() and not SandboxLedgerEntry.objects.exists()


def test_checkout_requires_an_idempotency_key_and_a_token(player, house) -> None:
    reservation = reserve(player, house, 1)
    client = client_for(player)
    no_key = client.post(url(reservation.pk), {"payment_token": "tok_ok"}, format="json")
    assert no_key.status_code == 422 and no_key.json()["code"] == "validation_error"
    no_token = client.post(url(reservation.pk), {}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert no_token.status_code == 422
    assert no_token.json()["errors"][0]["field"] == "payment_token"
    assert not Payment.objects.exists()


def test_someone_elses_reservation_is_not_found(player, make_player, house) -> None:
    reservation = reserve(player, house, 1)
    response = client_for(make_player()).post(
        url(reservation.pk), {"payment_token": "tok_ok"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_a_declined_checkout_shows_failed_with_its_code(player, house) -> None:
    reservation = reserve(player, house, 1)
    client = client_for(player)
    client.post(
        url(reservation.pk),
        {"payment_token": "tok_declined"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    detail = client.get(f"/api/v1/reservations/{reservation.pk}/").json()
    assert (detail["status"], detail["failure_code"], detail["tickets"]) == (
        "failed",
        "card_declined",
        [],
    )
