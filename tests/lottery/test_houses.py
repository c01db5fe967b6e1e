"""House API: visible houses only, filters, ordering, constant queries, live availability."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from lottery import services
from lottery.models import House
from reservations.services import reserve_tickets, sync_inventory

URL = "/api/v1/houses/"


def test_list_shows_the_contract_fields(api_client, make_house) -> None:
    house = make_house(participant_cap=50, max_tickets_per_user=20, draw_commitment="ab" * 32)
    item = api_client.get(URL).json()["results"][0]
    for name in (
        "id",
        "title",
        "city",
        "status",
        "ticket_price",
        "currency",
        "total_tickets",
        "tickets_sold",
        "tickets_available",
        "participants",
        "participant_cap",
        "min_participation_percent",
        "max_tickets_per_user",
        "sales_start_at",
        "sales_end_at",
        "draw_commitment",
    ):
        assert name in item, name
    assert item["id"] == house.pk and item["tickets_available"] == 100
    assert item["draw_commitment"] == "ab" * 32


def test_deleted_and_draft_houses_are_invisible(api_client, make_house) -> None:
    visible = make_house()
    draft = make_house(status=House.Status.DRAFT)
    deleted = make_house(deleted_at=timezone.now())
    ids = [h["id"] for h in api_client.get(URL).json()["results"]]
    assert ids == [visible.pk]
    assert api_client.get(f"{URL}{draft.pk}/").status_code == 404
    response = api_client.get(f"{URL}{deleted.pk}/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert api_client.get(f"{URL}{visible.pk}/").status_code == 200
    assert api_client.get(f"{URL}{2**70}/").status_code == 404


def test_filters_by_status_city_and_price(api_client, make_house) -> None:
    cheap = make_house(city="Porto", ticket_price=Decimal("5.00"))
    dear = make_house(city="Lisbon", ticket_price=Decimal("50.00"))
    paused = make_house(city="Porto", status=House.Status.PAUSED, ticket_price=Decimal("20.00"))

    def ids(query: str) -> list[int]:
        return sorted(h["id"] for h in api_client.get(URL + query).json()["results"])

    assert ids("?city=porto") == sorted([cheap.pk, paused.pk])
    assert ids("?status=paused") == [paused.pk]
    assert ids("?min_price=10") == sorted([dear.pk, paused.pk])
    assert ids("?max_price=20&city=Porto") == sorted([cheap.pk, paused.pk])


def test_ordering(api_client, make_house) -> None:
    a = make_house(ticket_price=Decimal("30.00"))
    b = make_house(ticket_price=Decimal("10.00"))
    c = make_house(ticket_price=Decimal("20.00"))
    ordered = [h["id"] for h in api_client.get(URL + "?ordering=ticket_price").json()["results"]]
    assert ordered == [b.pk, c.pk, a.pk]
    newest = [h["id"] for h in api_client.get(URL + "?ordering=-created_at").json()["results"]]
    assert newest == [c.pk, b.pk, a.pk]


@pytest.mark.parametrize("query", ["?status=draft", "?ordering=title", "?min_price=abc"])
def test_bad_filters_are_422(api_client, db, query) -> None:
    response = api_client.get(URL + query)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("count", [1, 25])
def test_list_costs_a_constant_number_of_queries(
    api_client, make_house, django_assert_max_num_queries, count
) -> None:
    for _ in range(count):
        make_house()
    with django_assert_max_num_queries(2):  # one count, one page
        response = api_client.get(URL + "?page_size=100")
    assert len(response.json()["results"]) == count


def test_availability_comes_from_redis_when_fresh(api_client, player, make_house) -> None:
    house = make_house(total_tickets=10)
    sync_inventory()
    reserve_tickets(player=player, house_id=house.pk, quantity=4)  # Redis moved by the Lua script
    House.objects.filter(pk=house.pk).update(tickets_reserved=0)  # the database now disagrees
    assert api_client.get(f"{URL}{house.pk}/").json()["tickets_available"] == 6


def test_availability_falls_back_to_the_database_without_redis(api_client, make_house) -> None:
    house = make_house(total_tickets=10)
    House.objects.filter(pk=house.pk).update(tickets_reserved=3)
    assert api_client.get(f"{URL}{house.pk}/").json()["tickets_available"] == 7


def test_soft_delete_is_refused_while_tickets_are_held(player, make_house) -> None:
    house = make_house()
    reserve_tickets(player=player, house_id=house.pk, quantity=1)
    with pytest.raises(Exception, match="cannot be deleted"):
        services.soft_delete_house(house_id=house.pk)
    empty = make_house()
    services.soft_delete_house(house_id=empty.pk)
    empty.refresh_from_db()
    assert empty.deleted_at is not None


def test_hard_delete_is_impossible_while_reservations_exist(player, make_house) -> None:
    house = make_house()
    reserve_tickets(player=player, house_id=house.pk, quantity=1)
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        house.delete()


def test_status_transitions_are_conditional(make_house) -> None:
    house = make_house(status=House.Status.DRAFT)
    assert services.change_house_status(house_id=house.pk, to_status="active").status == "active"
    assert services.change_house_status(house_id=house.pk, to_status="paused").status == "paused"
    with pytest.raises(Exception, match="cannot move"):
        services.change_house_status(house_id=house.pk, to_status="drawn")


@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ({"tickets_sold": 60, "tickets_reserved": 41}, "house_never_oversold"),
        ({"tickets_reserved": -1}, "house_reserved_non_negative"),
        ({"participant_cap": 2, "participants_count": 3}, "house_participants_within_cap"),
        ({"status": "sold"}, "house_status_known"),
        ({"ticket_price": Decimal("0")}, "house_price_positive"),
        ({"min_participation_percent": 101}, "house_min_participation_is_percent"),
        (
            {"sales_end_at": timezone.now() - timezone.timedelta(days=5)},
            "house_sales_window_ordered",
        ),
    ],
)
def test_database_refuses_broken_houses(make_house, changes, constraint) -> None:
    house = make_house()
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        House.objects.filter(pk=house.pk).update(**changes)
