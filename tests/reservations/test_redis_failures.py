"""Redis really fails (a private server stopped or frozen): the database still decides."""

import logging
import signal
import time

import pytest
import redis as redis_lib

from core import exceptions as domain
from core import metrics
from core.health import readiness
from lottery.models import House
from purchases.selectors import integrity_mismatches
from reservations import inventory
from reservations.services import reserve_tickets, sync_inventory
from tests.private_redis import private_redis
from tests.reservations.conftest import race

PORT_STOPPED, PORT_FROZEN, PORT_DRIFT, PORT_FALLBACK = 6391, 6392, 6393, 6394


def _available_in_redis(url: str, house_id: int) -> int:
    client = redis_lib.Redis.from_url(url)
    try:
        return int(client.hget(inventory.house_key(house_id), "available"))
    finally:
        client.close()


def test_redis_stopped_mid_run_reserving_stays_correct_and_ready_is_degraded(
    settings, make_player, make_house
) -> None:
    with private_redis(PORT_STOPPED) as server:
        settings.REDIS_URL = server.url
        house = make_house(total_tickets=10)
        sync_inventory()
        reserve_tickets(player=make_player(), house_id=house.pk, quantity=3)
        assert _available_in_redis(server.url, house.pk) == 7
        assert readiness()[1]["checks"]["redis"] == "ok"

        server.stop()
        fallbacks_before = inventory.stats.fallbacks
        reserve_tickets(player=make_player(), house_id=house.pk, quantity=4)
        reserve_tickets(player=make_player(), house_id=house.pk, quantity=3)
        with pytest.raises(domain.SoldOut):
            reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)

        assert inventory.stats.fallbacks >= fallbacks_before + 3
        assert inventory.breaker.state == "open"
        status, body = readiness()
        assert status == 200 and body["status"] == "degraded"
        assert body["checks"]["redis"] == "unavailable"
        house.refresh_from_db()
        assert house.tickets_reserved == 10
        assert integrity_mismatches() == []


def test_breaker_stops_asking_a_dead_redis(settings, make_player, make_house) -> None:
    with private_redis(PORT_STOPPED) as server:
        settings.REDIS_URL = server.url
        house = make_house(total_tickets=100)
        server.stop()
        for _ in range(inventory.FAILURES_TO_OPEN):
            reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)
        errors = inventory.stats.redis_errors
        for _ in range(5):
            reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)
        assert inventory.stats.redis_errors == errors  # open breaker: Redis not even tried
        house.refresh_from_db()
        assert house.tickets_reserved == 8


def _fallbacks_counted(reason: str) -> float:
    series = metrics.series_name("inventory_fallback_total", {"reason": reason})
    return metrics.snapshot()[0].get(series, 0)


def test_fallbacks_are_counted_in_metrics_and_an_open_breaker_is_logged_once(
    settings, caplog, make_player, make_house
) -> None:
    with private_redis(PORT_FALLBACK) as server:
        settings.REDIS_URL = server.url
        house = make_house(total_tickets=100)
        sync_inventory()
        server.stop()
        errors_before = _fallbacks_counted("redis_error")
        for _ in range(inventory.FAILURES_TO_OPEN):
            reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)
        assert inventory.breaker.state == "open"
        assert _fallbacks_counted("redis_error") == errors_before + inventory.FAILURES_TO_OPEN
        open_before = _fallbacks_counted("breaker_open")
        caplog.clear()

        with caplog.at_level(logging.WARNING, logger="reservations.inventory"):
            for _ in range(3):
                reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)

        assert _fallbacks_counted("breaker_open") == open_before + 3
        warnings = [r.getMessage() for r in caplog.records if r.name == "reservations.inventory"]
        assert len(warnings) == 1 and warnings[0].startswith("inventory redis breaker open")
        house.refresh_from_db()
        assert house.tickets_reserved == inventory.FAILURES_TO_OPEN + 3


def test_breaker_closes_again_once_redis_is_back(settings, make_player, make_house) -> None:
    inventory.breaker.open_seconds = 0.2
    try:
        with private_redis(PORT_STOPPED) as server:
            settings.REDIS_URL = server.url
            house = make_house(total_tickets=100)
            server.stop()
            for _ in range(inventory.FAILURES_TO_OPEN):
                reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)
            assert inventory.breaker.state == "open"
            server.start()
            time.sleep(0.3)
            sync_inventory()  # the half-open trial succeeds
            reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)
            assert inventory.breaker.state == "closed"
            assert _available_in_redis(server.url, house.pk) == 96
    finally:
        inventory.breaker.open_seconds = inventory.OPEN_SECONDS


def test_frozen_redis_times_out_fast_and_the_database_answers(
    settings, make_player, make_house
) -> None:
    with private_redis(PORT_FROZEN) as server:
        settings.REDIS_URL = server.url
        house = make_house(total_tickets=10)
        sync_inventory()
        server.process.send_signal(signal.SIGSTOP)  # accepts connections, never answers
        try:
            started = time.monotonic()
            for _ in range(4):
                reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)
            elapsed = time.monotonic() - started
        finally:
            server.process.send_signal(signal.SIGCONT)
        # Without the 50 ms socket timeout the first call would hang for good.
        assert elapsed < 5
        assert inventory.stats.redis_errors >= 1
        house.refresh_from_db()
        assert house.tickets_reserved == 4


@pytest.mark.django_db(transaction=True)
def test_redis_hash_too_high_cannot_cause_an_oversell_and_sync_repairs_it(
    settings, make_player, make_house
) -> None:
    with private_redis(PORT_DRIFT) as server:
        settings.REDIS_URL = server.url
        house = make_house(total_tickets=10)
        sync_inventory()
        client = redis_lib.Redis.from_url(server.url)
        client.hset(inventory.house_key(house.pk), mapping={"total": 1000, "available": 1000})
        players = [make_player() for _ in range(30)]

        results = race(
            30, lambda i: reserve_tickets(player=players[i], house_id=house.pk, quantity=1)
        )

        assert sum(not isinstance(r, Exception) for r in results) == 10
        assert all(isinstance(r, domain.SoldOut) for r in results if isinstance(r, Exception))
        house.refresh_from_db()
        assert house.tickets_reserved == 10
        assert integrity_mismatches() == []

        drifts = {d.house_id: d for d in sync_inventory()}
        assert drifts[house.pk].tickets != 0  # the drift is reported
        assert _available_in_redis(server.url, house.pk) == 0
        assert int(client.hget(inventory.house_key(house.pk), "total")) == 10
        client.close()


def test_redis_hash_too_low_refuses_until_sync_repairs_it(settings, player, make_house) -> None:
    with private_redis(PORT_DRIFT) as server:
        settings.REDIS_URL = server.url
        house = make_house(total_tickets=10)
        sync_inventory()
        client = redis_lib.Redis.from_url(server.url)
        client.hset(inventory.house_key(house.pk), "available", 0)
        with pytest.raises(domain.SoldOut):
            reserve_tickets(player=player, house_id=house.pk, quantity=1)
        drift = sync_inventory()[0]
        assert (drift.redis_available, drift.database_available) == (0, 10)
        reserve_tickets(player=player, house_id=house.pk, quantity=1)
        assert _available_in_redis(server.url, house.pk) == 9
        client.close()


def test_failed_database_refusal_gives_redis_its_tickets_back(settings, make_house, make_player):
    with private_redis(PORT_DRIFT) as server:
        settings.REDIS_URL = server.url
        house = make_house(total_tickets=10, max_tickets_per_user=2)
        sync_inventory()
        player = make_player()
        with pytest.raises(domain.PurchaseLimitExceeded):
            reserve_tickets(player=player, house_id=house.pk, quantity=3)
        assert _available_in_redis(server.url, house.pk) == 10
        House.objects.filter(pk=house.pk).update(status="paused")
        with pytest.raises(domain.SalesClosed):
            reserve_tickets(player=player, house_id=house.pk, quantity=1)
        assert _available_in_redis(server.url, house.pk) == 10


def test_key_used_while_redis_was_down_still_replays_after_it_is_back(
    settings, make_player, make_house
) -> None:
    inventory.breaker.open_seconds = 0.1
    try:
        with private_redis(PORT_STOPPED) as server:
            settings.REDIS_URL = server.url
            house = make_house(total_tickets=2)
            sync_inventory()
            player = make_player()
            server.stop()
            first = reserve_tickets(
                player=player, house_id=house.pk, quantity=2, idempotency_key="k", fingerprint="f"
            )
            server.start()
            time.sleep(0.2)
            sync_inventory()  # Redis now knows the house is sold out

            again = reserve_tickets(
                player=player, house_id=house.pk, quantity=2, idempotency_key="k", fingerprint="f"
            )

            assert again.replayed and again.status == 201 and again.body == first.body
            with pytest.raises(domain.SoldOut):
                reserve_tickets(player=make_player(), house_id=house.pk, quantity=1)
    finally:
        inventory.breaker.open_seconds = inventory.OPEN_SECONDS


def test_replay_after_redis_lost_its_data_returns_the_stored_201(
    settings, make_player, make_house
) -> None:
    """Redis restarted empty, the sync rebuilt it: the gate refuses, the key still replays."""
    from tests.conftest import client_for

    with private_redis(PORT_STOPPED) as server:
        settings.REDIS_URL = server.url
        house = make_house(total_tickets=2)
        sync_inventory()
        client = client_for(make_player())
        body = {"house_id": house.pk, "quantity": 2}
        first = client.post(
            "/api/v1/reservations/", body, format="json", HTTP_IDEMPOTENCY_KEY="kept-in-pg"
        )
        assert first.status_code == 201

        server.stop()
        server.start()  # no persistence: every hash and marker is gone
        inventory.breaker.reset()
        sync_inventory()
        stranger = client_for(make_player()).post(
            "/api/v1/reservations/", body, format="json", HTTP_IDEMPOTENCY_KEY="new"
        )
        assert stranger.json()["code"] == "sold_out"  # the gate refuses this house again

        again = client.post(
            "/api/v1/reservations/", body, format="json", HTTP_IDEMPOTENCY_KEY="kept-in-pg"
        )

        assert again.status_code == 201
        assert again["Idempotent-Replayed"] == "true"
        assert again.content == first.content
