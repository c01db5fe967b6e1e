"""sync_inventory never overwrites a Redis change with an older database read."""

import logging

import pytest
import redis as redis_lib
from django.conf import settings

from core import exceptions as domain
from reservations import inventory, selectors
from reservations.services import cancel_reservation, reserve_tickets, sync_inventory


def _hash(house_id: int) -> dict[str, str]:
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        return {
            k.decode(): v.decode() for k, v in client.hgetall(inventory.house_key(house_id)).items()
        }
    finally:
        client.close()


@pytest.mark.django_db(transaction=True)
def test_cancel_between_the_sync_read_and_the_rebuild_is_not_overwritten(
    monkeypatch, make_player, make_house
) -> None:
    house = make_house(total_tickets=2)
    sync_inventory()
    first, second = make_player(), make_player()
    held = reserve_tickets(player=first, house_id=house.pk, quantity=2)
    assert _hash(house.pk)["available"] == "0"
    read_inventory_truth = selectors.inventory_truth
    cancelled = []

    def cancel_right_after_the_read(house_id: int | None = None) -> list:
        truth = read_inventory_truth(house_id)  # still counts the held tickets
        if not cancelled:  # the cancel commits and gives Redis its +2 after commit
            cancelled.append(cancel_reservation(player=first, reservation_id=held.data()["id"]))
        return truth

    monkeypatch.setattr(selectors, "inventory_truth", cancel_right_after_the_read)

    drifts = sync_inventory()

    assert cancelled and _hash(house.pk)["available"] == "2"
    assert [d.database_available for d in drifts if d.house_id == house.pk] == [2]
    reserve_tickets(player=second, house_id=house.pk, quantity=2)  # not a stale sold_out
    with pytest.raises(domain.SoldOut):
        reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)


def test_every_change_to_a_house_moves_its_version_and_a_sold_out_answer_does_not(
    player, make_player, make_house
) -> None:
    house = make_house(total_tickets=2)
    sync_inventory()
    seen = [inventory.version(house.pk)]
    inventory.try_reserve(house_id=house.pk, user_id=player.pk, quantity=2)
    seen.append(inventory.version(house.pk))
    sold_out = inventory.try_reserve(house_id=house.pk, user_id=make_player().pk, quantity=1)
    assert sold_out == inventory.Gate.SOLD_OUT and inventory.version(house.pk) == seen[-1]
    inventory.adjust(house_id=house.pk, delta=0, user_id=player.pk, participant="remove")
    seen.append(inventory.version(house.pk))
    sync_inventory()
    seen.append(inventory.version(house.pk))
    assert "" not in seen and len(set(seen)) == 4


def test_rebuild_refuses_when_the_version_moved_since_it_was_read(player, make_house) -> None:
    house = make_house(total_tickets=5)
    sync_inventory()
    read_before_the_database = inventory.version(house.pk)
    inventory.adjust(house_id=house.pk, delta=-3, user_id=player.pk, participant="add")

    result = inventory.rebuild(
        house_id=house.pk,
        total=5,
        available=5,
        cap=None,
        participant_ids=[],
        expected_version=read_before_the_database,
    )

    assert result == inventory.VERSION_CHANGED
    assert _hash(house.pk)["available"] == "2"  # untouched


def test_a_house_that_keeps_changing_is_left_for_the_next_sync(
    monkeypatch, caplog, player, make_house
) -> None:
    house = make_house(total_tickets=5)
    sync_inventory()
    inventory.adjust(house_id=house.pk, delta=-1)
    read_inventory_truth = selectors.inventory_truth

    def change_after_every_read(house_id: int | None = None) -> list:
        truth = read_inventory_truth(house_id)
        inventory.adjust(house_id=house.pk, delta=0)
        return truth

    monkeypatch.setattr(selectors, "inventory_truth", change_after_every_read)
    with caplog.at_level(logging.WARNING, logger="reservations.services.inventory_sync"):
        drifts = sync_inventory()

    assert house.pk not in [d.house_id for d in drifts]
    assert _hash(house.pk)["available"] == "4"
    assert f"inventory for house {house.pk} not rebuilt" in caplog.text


def test_a_staff_change_in_lottery_reaches_the_redis_inventory_through_its_signal(
    make_house, django_capture_on_commit_callbacks
) -> None:
    """lottery sends ``house_changed``; reservations (above it) rebuilds or forgets the hash."""
    from lottery.services import change_house_status

    house = make_house(total_tickets=10)
    sync_inventory()
    assert inventory.read_availability([house.pk])[house.pk].available == 10

    with django_capture_on_commit_callbacks(execute=True):
        change_house_status(house_id=house.pk, to_status="paused")

    assert inventory.read_availability([house.pk]) == {}
