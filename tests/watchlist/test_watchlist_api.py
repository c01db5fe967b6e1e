"""The watchlist API: idempotent add (also raced), 404s, constant-query list, fail-closed checks."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from lottery.models import House
from reservations import inventory
from reservations.services import sync_inventory
from tests.conftest import client_for
from tests.reservations.conftest import race
from watchlist.models import WatchlistItem

pytestmark = pytest.mark.django_db


def test_adding_a_house_is_201_then_200_with_one_row(player_client, player, make_house) -> None:
    house = make_house()
    first = player_client.post("/api/v1/watchlist/", {"house_id": house.pk}, format="json")
    again = player_client.post("/api/v1/watchlist/", {"house_id": house.pk}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["house_id"] == house.pk
    assert first.json()["house"]["title"] == house.title
    assert again.json()["watched_at"] == first.json()["watched_at"]
    assert WatchlistItem.objects.filter(user=player, house=house).count() == 1


@pytest.mark.parametrize(
    "house_kind", ["unknown", "deleted", "draft"], ids=["unknown", "deleted", "draft"]
)
def test_a_house_players_cannot_see_is_404(player_client, make_house, house_kind) -> None:
    if house_kind == "unknown":
        house_id = 987654321
    elif house_kind == "deleted":
        house_id = make_house(deleted_at=timezone.now()).pk
    else:
        house_id = make_house(status=House.Status.DRAFT).pk
    response = player_client.post("/api/v1/watchlist/", {"house_id": house_id}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not WatchlistItem.objects.exists()


def test_removing_is_204_then_404(player_client, player, make_house) -> None:
    house = make_house()
    player_client.post("/api/v1/watchlist/", {"house_id": house.pk}, format="json")
    assert player_client.delete(f"/api/v1/watchlist/{house.pk}/").status_code == 204
    gone = player_client.delete(f"/api/v1/watchlist/{house.pk}/")
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"
    assert not WatchlistItem.objects.filter(user=player).exists()


def test_others_watchlists_are_neither_listed_nor_removable(
    player_client, make_player, make_house
) -> None:
    house = make_house()
    other = client_for(make_player())
    other.post("/api/v1/watchlist/", {"house_id": house.pk}, format="json")
    assert player_client.get("/api/v1/watchlist/").json()["count"] == 0
    assert player_client.delete(f"/api/v1/watchlist/{house.pk}/").status_code == 404
    assert WatchlistItem.objects.count() == 1


def test_bad_bodies_are_refused(player_client) -> None:
    assert player_client.post("/api/v1/watchlist/", {}, format="json").status_code == 422
    wrong = player_client.post("/api/v1/watchlist/", {"house_id": "x"}, format="json")
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "validation_error"


def test_the_list_shows_newest_first_with_live_availability(
    player_client, player, make_house
) -> None:
    older, newer = make_house(total_tickets=100), make_house(total_tickets=50)
    hidden = make_house()
    for house in (older, newer, hidden):
        player_client.post("/api/v1/watchlist/", {"house_id": house.pk}, format="json")
    House.objects.filter(pk=hidden.pk).update(deleted_at=timezone.now())
    sync_inventory()
    inventory.adjust(house_id=newer.pk, delta=-43)  # Redis, the live count, says 7 are left
    body = player_client.get("/api/v1/watchlist/").json()
    assert body["count"] == 2
    assert [item["house_id"] for item in body["results"]] == [newer.pk, older.pk]
    assert body["results"][0]["house"]["tickets_available"] == 7
    assert body["results"][1]["house"]["tickets_available"] == 100


@pytest.mark.parametrize("houses", [2, 10])
def test_the_list_costs_the_same_queries_for_2_and_10_houses(
    player, make_house, django_assert_num_queries, houses
) -> None:
    client = client_for(player)
    for _ in range(houses):
        client.post("/api/v1/watchlist/", {"house_id": make_house().pk}, format="json")
    sync_inventory()
    client.get("/api/v1/me/")  # the token snapshot is cached, as on every later request
    # eligibility, count, page with the houses joined (availability comes from Redis)
    with django_assert_num_queries(3):
        response = client.get("/api/v1/watchlist/")
    assert response.json()["count"] == houses


@pytest.mark.parametrize(
    ("profile", "code"),
    [
        ({"is_verified": False}, "account_not_verified"),
        ({"account_status": "suspended"}, "account_suspended"),
        ({"account_status": "banned"}, "account_suspended"),
    ],
)
def test_unverified_or_suspended_players_are_refused_everywhere(
    make_player, make_house, profile, code
) -> None:
    house = make_house()
    client = client_for(make_player(**profile))
    calls = [
        client.get("/api/v1/watchlist/"),
        client.post("/api/v1/watchlist/", {"house_id": house.pk}, format="json"),
        client.delete(f"/api/v1/watchlist/{house.pk}/"),
    ]
    assert [(r.status_code, r.json()["code"]) for r in calls] == [(403, code)] * 3
    assert not WatchlistItem.objects.exists()


def test_anonymous_is_401(api_client) -> None:
    assert api_client.get("/api/v1/watchlist/").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_every_path_is_503_when_the_database_is_down(player, make_house) -> None:
    house = make_house()
    client = client_for(player)
    assert client.get("/api/v1/me/").status_code == 200  # token snapshot cached in Redis
    original_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"  # nothing listens there
    try:
        calls = [
            client.get("/api/v1/watchlist/"),
            client.post("/api/v1/watchlist/", {"house_id": house.pk}, format="json"),
            client.delete(f"/api/v1/watchlist/{house.pk}/"),
        ]
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original_port
    assert [(r.status_code, r.json()["code"]) for r in calls] == [(503, "service_unavailable")] * 3
    assert all(r.has_header("Retry-After") for r in calls)


@pytest.mark.django_db(transaction=True)
def test_twenty_identical_adds_at_once_make_one_row_one_201_and_nineteen_200(
    player, make_house
) -> None:
    house = make_house()
    client_for(player).get("/api/v1/me/")

    def add(_: int) -> int:
        return (
            client_for(player)
            .post("/api/v1/watchlist/", {"house_id": house.pk}, format="json")
            .status_code
        )

    statuses = race(20, add)
    assert sorted(statuses) == [200] * 19 + [201]
    assert WatchlistItem.objects.filter(user=player, house=house).count() == 1


def test_a_house_closing_tomorrow_is_still_watchable(player_client, make_house) -> None:
    house = make_house(sales_end_at=timezone.now() + timedelta(hours=3))
    assert (
        player_client.post("/api/v1/watchlist/", {"house_id": house.pk}, format="json").status_code
        == 201
    )
