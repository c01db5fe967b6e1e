"""The Redis gate in front of reserve: who it answers, and what it remembers."""

import pytest
import redis as redis_lib
from django.conf import settings

from core import exceptions as domain
from reservations import inventory
from reservations.inventory import Gate
from reservations.services import reserve_tickets, sync_inventory


def test_reserving_without_a_key_leaves_no_marker_and_the_next_one_meets_the_gate(
    player, make_house
) -> None:
    house = make_house(total_tickets=10)
    sync_inventory()

    first = inventory.try_reserve(
        house_id=house.pk, user_id=player.pk, quantity=1, idempotency_key=None
    )
    second = inventory.try_reserve(
        house_id=house.pk, user_id=player.pk, quantity=1, idempotency_key=None
    )

    assert (first, second) == (Gate.RESERVED_NEW_MEMBER, Gate.RESERVED)
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        assert list(client.scan_iter(f"inv:idem:{player.pk}:*")) == []
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


def test_a_key_that_went_to_the_database_is_still_sent_there_again(player, make_house) -> None:
    house = make_house(total_tickets=10)
    sync_inventory()
    inventory.try_reserve(house_id=house.pk, user_id=player.pk, quantity=1, idempotency_key="k")

    again = inventory.try_reserve(
        house_id=house.pk, user_id=player.pk, quantity=1, idempotency_key="k"
    )

    assert again == Gate.KEY_SEEN
