"""The Redis gate in front of reserve: who it answers, and what it remembers."""

import pytest
import redis as redis_lib
from django.conf import settings

from core import exceptions as domain
from core.models import IdempotencyRecord
from reservations import inventory
from reservations.inventory import Gate
from reservations.services import reserve_tickets, sync_inventory


def test_each_reserve_through_the_gate_takes_its_tickets_in_redis(player, make_house) -> None:
    house = make_house(total_tickets=10)
    sync_inventory()

    first = inventory.try_reserve(house_id=house.pk, user_id=player.pk, quantity=1)
    second = inventory.try_reserve(house_id=house.pk, user_id=player.pk, quantity=1)

    assert (first, second) == (Gate.RESERVED_NEW_MEMBER, Gate.RESERVED)
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        assert int(client.hget(inventory.house_key(house.pk), "available")) == 8
    finally:
        client.close()


def test_a_second_keyless_reserve_right_after_the_first_is_refused_by_redis_alone(
    player, make_house, django_assert_num_queries
) -> None:
    house = make_house(total_tickets=3)
    sync_inventory()
    reserve_tickets(player=player, house_id=house.pk, quantity=2)

    with django_assert_num_queries(0), pytest.raises(domain.SoldOut):
        reserve_tickets(player=player, house_id=house.pk, quantity=2)


def test_a_keyed_refusal_by_redis_costs_one_indexed_read_and_stores_nothing(
    player, make_house, django_assert_num_queries
) -> None:
    house = make_house(total_tickets=3)
    sync_inventory()
    reserve_tickets(player=player, house_id=house.pk, quantity=2, idempotency_key="first")

    with django_assert_num_queries(1), pytest.raises(domain.SoldOut):
        reserve_tickets(player=player, house_id=house.pk, quantity=2, idempotency_key="second")

    assert not IdempotencyRecord.objects.filter(key="second").exists()


def test_a_key_that_reserved_replays_when_redis_says_sold_out(player, make_house) -> None:
    house = make_house(total_tickets=2)
    sync_inventory()
    first = reserve_tickets(
        player=player, house_id=house.pk, quantity=2, idempotency_key="k", fingerprint="f"
    )
    assert inventory.try_reserve(house_id=house.pk, user_id=player.pk, quantity=2) == Gate.SOLD_OUT

    again = reserve_tickets(
        player=player, house_id=house.pk, quantity=2, idempotency_key="k", fingerprint="f"
    )

    assert again.replayed and again.status == 201 and again.body == first.body
