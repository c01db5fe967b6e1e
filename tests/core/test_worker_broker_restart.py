"""The broker Redis restarts while checkouts are in flight: the same worker carries on.

A private redis-server is the broker and the cache of both this process and a
real Celery worker process. It is stopped under load and started again on the
same port, once empty (no persistence) and once with its data (append-only
file in a temporary directory). The worker process must survive both and
finish the checkouts made afterwards.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from django.core.cache import cache
from django.db import connection, transaction

from config.celery import app as celery_app
from core.health import WORKER_HEARTBEAT_KEY, check_worker
from lottery.models import House
from payments.models import Payment
from reservations import inventory
from tests.conftest import client_for
from tests.factories import create_house
from tests.private_redis import PrivateRedis
from tests.workers import RunningWorker, celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PORT_WITHOUT_DATA, PORT_WITH_DATA = 6395, 6396
FINAL = {"completed", "failed", "refunded", "expired", "cancelled"}
RESTARTS = 4


@contextmanager
def broker_and_cache(settings: object, server: PrivateRedis) -> Iterator[None]:
    """This process publishes to, caches in and keeps its inventory in ``server``."""
    conf = celery_app.conf
    saved_broker = conf.broker_url
    settings.REDIS_URL = server.url
    settings.CELERY_BROKER_URL = server.url
    settings.CELERY_TASK_ALWAYS_EAGER = False  # readiness expects a worker
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": server.url},
    }
    conf.broker_url = server.url
    _forget_broker_connections()
    inventory.breaker.reset()
    try:
        yield
    finally:
        conf.broker_url = saved_broker
        _forget_broker_connections()
        inventory.breaker.reset()


def _forget_broker_connections() -> None:
    # The pools were built for the previous broker url.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def _reserve(client, house: House, quantity: int) -> str:
    response = client.post(
        "/api/v1/reservations/",
        {"house_id": house.pk, "quantity": quantity},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"reserve-{time.monotonic_ns()}",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _checkout(client, reservation_id: str) -> None:
    response = client.post(
        f"/api/v1/reservations/{reservation_id}/checkout/",
        {"payment_token": "tok_ok"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"checkout-{reservation_id}",
    )
    assert response.status_code == 202, response.content


def _wait_final(client, reservation_id: str, worker: RunningWorker, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/reservations/{reservation_id}/").json()
        if body["status"] in FINAL:
            return body
        assert worker.process.poll() is None, f"worker died:\n{worker.log()[-4000:]}"
        time.sleep(0.1)
    raise AssertionError(f"still {body['status']}; worker log:\n{worker.log()[-4000:]}")


@contextmanager
def house_locked(house: House) -> Iterator[None]:
    """Hold the house row lock, so a checkout task charges and then waits, unacknowledged."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                House.objects.select_for_update().get(pk=house.pk)
                locked.set()
                release.wait(60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(30)


def _restart_under_load(settings: object, server: PrivateRedis, make_player) -> None:
    with (
        broker_and_cache(settings, server),
        celery_worker(
            settings, redis_url=server.url, name=f"broker-restart-worker-{server.port}"
        ) as worker,
    ):
        house = create_house(total_tickets=1000)
        client = client_for(make_player())
        pid = worker.process.pid
        in_flight = []
        for _ in range(RESTARTS):
            reservation_id = _reserve(client, house, 1)
            in_flight.append(reservation_id)
            with house_locked(house):
                _checkout(client, reservation_id)
                # Charged, then waiting for the house lock: in flight, its late ack pending,
                # while the worker's other process waits for work (a BRPOP is outstanding).
                _wait_until_charged(reservation_id, worker)
                connections = worker.log().count("Connected to ")
                server.stop()
                time.sleep(1)
                server.start()
                restarted_at = time.time()
                deadline = time.monotonic() + 30
                while worker.log().count("Connected to ") <= connections:
                    assert worker.process.poll() is None, f"worker died:\n{worker.log()[-6000:]}"
                    assert time.monotonic() < deadline, worker.log()[-4000:]
                    time.sleep(0.2)

        # The same worker process finishes later checkouts.
        later = [_reserve(client, house, 1) for _ in range(3)]
        for reservation_id in later:
            _checkout(client, reservation_id)
        for reservation_id in later:
            body = _wait_final(client, reservation_id, worker)
            assert body["status"] == "completed", body
            assert len(body["tickets"]) == 1
        for reservation_id in in_flight:  # charged before the restart: finished all the same
            assert _wait_final(client, reservation_id, worker)["status"] == "completed"
        # Its heartbeat, written again since the last restart, keeps readiness "ok".
        deadline = time.monotonic() + 30
        while float(cache.get(WORKER_HEARTBEAT_KEY) or 0) < restarted_at:
            assert time.monotonic() < deadline, worker.log()[-4000:]
            time.sleep(0.2)
        assert check_worker() == "ok"
        assert worker.process.pid == pid and worker.process.poll() is None, worker.log()[-4000:]
        assert "Unrecoverable error" not in worker.log(), worker.log()[-4000:]


def _wait_until_charged(reservation_id: str, worker: RunningWorker) -> None:
    deadline = time.monotonic() + 30
    while not Payment.objects.filter(
        reservation_id=reservation_id, status=Payment.Status.SUCCEEDED
    ).exists():
        assert worker.process.poll() is None, f"worker died:\n{worker.log()[-6000:]}"
        assert time.monotonic() < deadline, worker.log()[-4000:]
        time.sleep(0.02)
    time.sleep(0.2)  # on to the house lock


def test_worker_survives_a_broker_restart_without_data(settings, make_player) -> None:
    server = PrivateRedis(PORT_WITHOUT_DATA)
    server.start()
    try:
        _restart_under_load(settings, server, make_player)
    finally:
        server.stop()


def test_worker_survives_a_broker_restart_with_data(settings, make_player, tmp_path) -> None:
    server = PrivateRedis(PORT_WITH_DATA, data_dir=tmp_path)
    server.start()
    try:
        redis.Redis.from_url(server.url).set("survives-restart", "1")
        _restart_under_load(settings, server, make_player)
        assert redis.Redis.from_url(server.url).get("survives-restart") == b"1"
    finally:
        server.stop()
