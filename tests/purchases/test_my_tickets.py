"""GET /api/v1/me/tickets/: one's own tickets only, paginated, in constant queries."""

import uuid

import pytest

from lottery.models import House
from purchases.services.checkout import start_checkout
from reservations.services import reserve_tickets
from tests.conftest import client_for
from tests.factories import create_house


@pytest.fixture
def buy(django_capture_on_commit_callbacks):
    """Reserve and pay (tasks run in-process once the checkout commits)."""

    def purchase(player, house: House, quantity: int) -> None:
        outcome = reserve_tickets(
            player=player, house_id=house.pk, quantity=quantity, idempotency_key=uuid.uuid4().hex
        )
        with django_capture_on_commit_callbacks(execute=True):
            start_checkout(
                player=player, reservation_id=outcome.data()["id"], payment_token="tok_ok"
            )

    return purchase


@pytest.fixture
def house(db) -> House:
    return create_house(title="Canal house", max_tickets_per_purchase=20, total_tickets=1000)


@pytest.mark.django_db
def test_players_see_only_their_own_tickets(player, make_player, house, buy):
    other = make_player()
    buy(player, house, 3)
    buy(other, house, 2)
    body = client_for(player).get("/api/v1/me/tickets/").json()
    assert body["count"] == 3
    assert sorted(t["ticket_number"] for t in body["results"]) == [1, 2, 3]
    assert {t["house_title"] for t in body["results"]} == {"Canal house"}
    assert {t["status"] for t in body["results"]} == {"active"}


@pytest.mark.django_db
def test_my_tickets_are_paginated_in_constant_queries(
    player, house, buy, django_assert_max_num_queries
):
    for _ in range(3):
        buy(player, house, 10)
    client = client_for(player)
    with django_assert_max_num_queries(4):
        page = client.get("/api/v1/me/tickets/?page_size=25").json()
    assert page["count"] == 30
    assert len(page["results"]) == 25
    assert page["next"]


@pytest.mark.django_db
def test_my_tickets_need_authentication(client):
    assert client.get("/api/v1/me/tickets/").json()["code"] == "not_authenticated"
