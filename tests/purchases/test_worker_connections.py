"""A real worker keeps its PostgreSQL connections between tasks, and replaces a dead one.

Celery's Django fixup closes the connections around every task unless told to
reuse them (``config/celery.py``): that was one new PostgreSQL backend per
task. These tests count the sessions PostgreSQL opened for the test database
while a real worker runs checkouts one after another (each its own task,
relay and notification batch), and kill the worker's backends between two.
"""

import time

import pytest
from django.db import connection

from tests.conftest import client_for
from tests.purchases.test_checkout_worker import checkout_via_api, poll, reserve_via_api
from tests.workers import celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHECKOUTS = 6


def sessions_opened() -> int:
    """Sessions PostgreSQL has opened for this database so far (its statistics lag ~1 s)."""
    time.sleep(1.5)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def buy(client, house, log_path) -> dict:
    reservation_id = reserve_via_api(client, house, 1)
    checkout_via_api(client, reservation_id, "tok_ok")
    return poll(client, reservation_id, log_path)


def test_a_worker_reuses_its_connections_across_tasks(settings, player, house) -> None:
    client = client_for(player)
    with celery_worker(settings, name="connections-worker") as worker:
        buy(client, house, worker.log_path)  # both pool processes may connect once
        buy(client, house, worker.log_path)
        before = sessions_opened()
        for _ in range(CHECKOUTS):
            assert buy(client, house, worker.log_path)["status"] == "completed"
        opened = sessions_opened() - before
    # Each checkout ran at least three tasks (checkout, relay, notification batch):
    # closing around each would have opened 3 x CHECKOUTS sessions.
    assert opened <= 2, f"{opened} sessions for {CHECKOUTS} checkouts"


def test_a_worker_whose_connection_died_between_tasks_reconnects(settings, player, house) -> None:
    client = client_for(player)
    with celery_worker(settings, name="connections-worker") as worker:
        assert buy(client, house, worker.log_path)["status"] == "completed"
        # Kill between tasks, not under the relay or notification task the purchase queued:
        # a query cut mid-task fails that task (its retry is the outbox's job, not this test's).
        worker.wait_until_idle()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1  # the worker's kept connection(s)
        for _ in range(2):
            assert buy(client, house, worker.log_path)["status"] == "completed"
        assert "Traceback" not in worker.log()
