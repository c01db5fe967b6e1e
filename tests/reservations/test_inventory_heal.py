"""The Redis gate heals itself: a miss rebuilds that house's hash at once, once.

A private redis-server (started and stopped here, never the shared 6379) and
real PostgreSQL; the rebuild is counted by a spy on the sync's own
``_rebuild_house``, never by mocking Redis or the database.
"""

import threading
import time
from collections.abc import Iterator

import pytest
import redis as redis_lib
from django.utils import timezone

from core import exceptions as domain
from core import metrics
from lottery.models import House
from purchases.selectors import integrity_mismatches
from reservations import inventory, selectors
from reservations.services import inventory_sync, reserve_tickets, sync_inventory
from tests.private_redis import PrivateRedis, private_redis
from tests.reservations.conftest import race

PORT = 6398

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_server(settings) -> Iterator[PrivateRedis]:
    with private_redis(PORT) as server:
        settings.REDIS_URL = server.url
        yield server


@pytest.fixture
def rebuilds(monkeypatch) -> list[int]:
    """The house ids ``_rebuild_house`` was called for, whoever called it."""
    calls: list[int] = []
    lock = threading.Lock()
    real = inventory_sync._rebuild_house

    def spy(house_id: int) -> inventory_sync.HouseDrift | None:
        with lock:
            calls.append(house_id)
        return real(house_id)

    monkeypatch.setattr(inventory_sync, "_rebuild_house", spy)
    return calls


def _hash(server: PrivateRedis, house_id: int) -> dict[str, int]:
    client = redis_lib.Redis.from_url(server.url)
    try:
        raw = client.hgetall(inventory.house_key(house_id))
    finally:
        client.close()
    return {key.decode(): int(value) for key, value in raw.items()}


def _database_available(house_id: int) -> int:
    house = House.objects.get(pk=house_id)
    return house.total_tickets - house.tickets_sold - house.tickets_reserved


def _rebuilds_counted() -> float:
    series = metrics.series_name("inventory_rebuilds_total", {"reason": "miss"})
    return metrics.snapshot()[0].get(series, 0)


def test_after_a_redis_restart_one_miss_rebuilds_and_the_next_sold_out_costs_no_query(
    redis_server, make_player, make_house, django_assert_num_queries
) -> None:
    house = make_house(total_tickets=2)
    reserve_tickets(player=make_player(), house_id=house.pk, quantity=2)  # sold out
    sync_inventory()
    late, keyed = make_player(), make_player()

    redis_server.stop()
    redis_server.start()  # empty: no save, no append-only file
    restarted_at = time.monotonic()
    assert _hash(redis_server, house.pk) == {}
    rebuilds_before = _rebuilds_counted()  # the first reserve above missed and rebuilt too

    with pytest.raises(domain.SoldOut):  # the miss: the database answers, then rebuilds
        reserve_tickets(player=late, house_id=house.pk, quantity=1)
    assert _hash(redis_server, house.pk)["available"] == 0

    with django_assert_num_queries(0), pytest.raises(domain.SoldOut):
        reserve_tickets(player=late, house_id=house.pk, quantity=1)
    with django_assert_num_queries(1), pytest.raises(domain.SoldOut):  # the key's indexed read
        reserve_tickets(player=keyed, house_id=house.pk, quantity=1, idempotency_key="k")
    assert time.monotonic() - restarted_at < 1.0
    assert _rebuilds_counted() == rebuilds_before + 1


def test_a_flushed_house_is_rebuilt_after_the_reservation_that_missed_commits(
    redis_server, make_player, make_house
) -> None:
    house = make_house(total_tickets=10)
    sync_inventory()
    redis_lib.Redis.from_url(redis_server.url).flushdb()

    reserve_tickets(player=make_player(), house_id=house.pk, quantity=3)

    assert _hash(redis_server, house.pk)["available"] == 7 == _database_available(house.pk)


def test_twenty_players_missing_at_once_trigger_one_rebuild(
    redis_server, rebuilds, make_player, make_house
) -> None:
    house = make_house(total_tickets=100)
    players = [make_player() for _ in range(20)]

    results = race(20, lambda i: reserve_tickets(player=players[i], house_id=house.pk, quantity=1))

    assert all(result.status == 201 for result in results)
    assert rebuilds == [house.pk]
    assert _database_available(house.pk) == 80
    assert integrity_mismatches() == []
    # Misses still in flight during the rebuild read may leave Redis a few tickets high
    # (only more requests reach the database), never low; the next sync evens it out.
    assert 80 <= _hash(redis_server, house.pk)["available"] <= 100
    sync_inventory()
    assert _hash(redis_server, house.pk)["available"] == 80


@pytest.mark.parametrize(
    "not_on_sale",
    [
        {"status": House.Status.PAUSED},
        {"status": House.Status.DRAFT},
        {"status": House.Status.CLOSED},
        {"deleted_at": timezone.now()},
    ],
    ids=["paused", "draft", "closed", "deleted"],
)
def test_misses_on_a_house_not_on_sale_build_nothing_and_read_once_per_period(
    redis_server, rebuilds, monkeypatch, make_player, make_house, not_on_sale
) -> None:
    monkeypatch.setattr(inventory, "MISS_REBUILD_EVERY_MS", 300)
    house = make_house(**not_on_sale)
    player = make_player()

    def refused_five_times() -> None:
        for _ in range(5):
            with pytest.raises((domain.SalesClosed, domain.NotFound)):
                reserve_tickets(player=player, house_id=house.pk, quantity=1)

    refused_five_times()
    assert rebuilds == [house.pk]
    time.sleep(0.35)
    refused_five_times()
    assert rebuilds == [house.pk, house.pk]
    assert _hash(redis_server, house.pk) == {}
    assert _rebuilds_counted() == 0


def test_a_reservation_landing_during_the_rebuild_read_is_not_overwritten(
    redis_server, monkeypatch, make_player, make_house
) -> None:
    """The rebuild read the rows, then a reservation went through Redis: versioned, it re-reads."""
    house = make_house(total_tickets=10)
    first, second = make_player(), make_player()
    real_participant_ids = selectors.participant_ids
    interleaved: list[int] = []

    def reservation_lands_mid_rebuild(house_id: int) -> list[int]:
        if not interleaved:
            interleaved.append(house_id)
            # Another process's rebuild got there first, then a player reserved through it.
            sync_inventory()
            reserve_tickets(player=second, house_id=house_id, quantity=4)
        return real_participant_ids(house_id)

    monkeypatch.setattr(selectors, "participant_ids", reservation_lands_mid_rebuild)

    reserve_tickets(player=first, house_id=house.pk, quantity=1)  # misses, then rebuilds

    assert interleaved == [house.pk]
    assert _database_available(house.pk) == 5
    assert _hash(redis_server, house.pk)["available"] == 5  # not 9: the stale read was refused


def test_a_miss_when_redis_is_down_reserves_and_does_not_raise(
    redis_server, rebuilds, make_player, make_house
) -> None:
    house = make_house(total_tickets=10)
    redis_server.stop()

    outcome = reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)

    assert outcome.status == 201
    assert rebuilds == []
