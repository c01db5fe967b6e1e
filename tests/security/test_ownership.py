"""A player can neither read nor act on another player's reservations, tickets, proofs,
payments or watchlist; staff-only endpoints refuse players.

Another player's object answers 404, exactly like an id that does not exist,
so ids cannot be probed; and nothing changes behind the refusal.
"""

import uuid

import pytest

from draws.services.passes import run_due
from payments.models import Payment, SandboxLedgerEntry
from purchases.models import Ticket
from reservations.models import Reservation
from tests.conftest import client_for
from tests.draws.flow import ENTROPY, activated_house, buy, end_sales, live_draw
from watchlist.models import WatchlistItem

pytestmark = pytest.mark.django_db(transaction=True)  # checkouts complete on commit


@pytest.fixture
def owner(make_player):
    return make_player()


@pytest.fixture
def intruder(make_player):
    return make_player()


def reserve(client, house_id: int, quantity: int = 1) -> str:
    response = client.post(
        "/api/v1/reservations/",
        {"house_id": house_id, "quantity": quantity},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_another_players_reservation_is_not_found_and_unchanged(owner, intruder, make_house):
    house = make_house(total_tickets=10)
    reservation_id = reserve(client_for(owner), house.pk, 2)
    thief = client_for(intruder)

    assert thief.get(f"/api/v1/reservations/{reservation_id}/").status_code == 404
    assert thief.post(f"/api/v1/reservations/{reservation_id}/cancel/").status_code == 404
    assert reservation_id not in [
        r["id"] for r in thief.get("/api/v1/reservations/").json()["results"]
    ]
    unknown = thief.get(f"/api/v1/reservations/{uuid.uuid4()}/")
    assert unknown.status_code == 404  # the same answer as an id that does not exist
    assert Reservation.objects.get(pk=reservation_id).status == Reservation.Status.PENDING


def test_another_player_cannot_pay_for_or_read_the_payment_of_a_reservation(
    owner, intruder, make_house
):
    house = make_house(total_tickets=10)
    reservation_id = reserve(client_for(owner), house.pk, 2)
    answer = client_for(intruder).post(
        f"/api/v1/reservations/{reservation_id}/checkout/",
        {"payment_token": "tok_ok"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert answer.status_code == 404, answer.content
    assert not Payment.objects.exists()
    assert not SandboxLedgerEntry.objects.exists()
    assert Reservation.objects.get(pk=reservation_id).status == Reservation.Status.PENDING

    paid = buy(owner, house, 1)  # the owner's paid purchase: its payment outcome is private
    assert client_for(intruder).get(f"/api/v1/reservations/{paid.pk}/").status_code == 404
    assert client_for(owner).get(f"/api/v1/reservations/{paid.pk}/").json()["status"] == (
        "completed"
    )


def test_another_players_tickets_and_proofs_are_not_shown(owner, intruder):
    house = activated_house(total_tickets=20)
    buy(owner, house, 2)
    buy(intruder, house, 1)
    end_sales(house)
    run_due()  # closed, ticket list frozen: proofs exist now
    own_ticket, other_ticket = (
        Ticket.objects.filter(owner=owner).first(),
        Ticket.objects.filter(owner=intruder).first(),
    )
    thief = client_for(intruder)
    listed = thief.get("/api/v1/me/tickets/").json()["results"]
    assert {t["id"] for t in listed} == {other_ticket.pk}
    assert client_for(owner).get(f"/api/v1/me/tickets/{own_ticket.pk}/proof/").status_code == 200
    assert thief.get(f"/api/v1/me/tickets/{own_ticket.pk}/proof/").status_code == 404
    assert thief.get(f"/api/v1/me/tickets/{other_ticket.pk}/proof/").status_code == 200
    assert live_draw(house)


def test_watchlists_are_private(owner, intruder, make_house):
    house = make_house(total_tickets=10)
    assert (
        client_for(owner)
        .post("/api/v1/watchlist/", {"house_id": house.pk}, format="json")
        .status_code
        == 201
    )
    thief = client_for(intruder)
    assert thief.get("/api/v1/watchlist/").json()["results"] == []
    thief.delete(f"/api/v1/watchlist/{house.pk}/")  # removes only the intruder's own (none)
    assert WatchlistItem.objects.filter(user=owner, house=house).exists()
    assert len(client_for(owner).get("/api/v1/watchlist/").json()["results"]) == 1


def test_staff_only_endpoints_refuse_players(owner, staff):
    house = activated_house(total_tickets=20)
    buy(owner, house, 1)
    end_sales(house)
    run_due()
    draw = live_draw(house)
    body = {"entropy": ENTROPY, "source": "dice"}
    refused = client_for(owner).post(f"/api/v1/draws/{draw.pk}/conduct/", body, format="json")
    assert refused.status_code == 403
    assert refused["Content-Type"].startswith("application/problem+json")
    draw.refresh_from_db()
    assert draw.status != "completed"
    # The same request from staff is accepted: the refusal was the permission, nothing else.
    done = client_for(staff).post(f"/api/v1/draws/{draw.pk}/conduct/", body, format="json")
    assert done.status_code == 200, done.content


def test_the_admin_refuses_a_logged_in_player(owner):
    from django.test import Client

    browser = Client()
    browser.force_login(owner)
    answer = browser.get("/admin/")
    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")
