"""End to end through the API with a real Celery worker process on the Redis broker.

The worker is a separate process (``tests/workers.py``) reading the test
database, so these tests commit (``transaction=True``). Crash tests kill the
pool process that runs the checkout (SIGKILL from a failpoint) and let Celery
redeliver.
"""

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command

from config.celery import app as celery_app
from core import failpoints
from lottery.models import House
from payments.models import Refund, SandboxLedgerEntry
from purchases.models import Ticket
from purchases.services.checkout import recover_stuck_checkouts
from purchases.tasks import process_checkout
from reservations.models import Reservation
from tests.conftest import client_for
from tests.workers import celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FINAL = {"completed", "failed", "refunded", "expired", "cancelled"}


@pytest.fixture
def worker(settings) -> Iterator[Path]:
    with celery_worker(settings, name="checkout-worker") as running:
        yield running.log_path


def reserve_via_api(client, house: House, quantity: int) -> str:
    response = client.post(
        "/api/v1/reservations/",
        {"house_id": house.pk, "quantity": quantity},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"reserve-{time.monotonic_ns()}",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def checkout_via_api(client, reservation_id: str, token: str) -> None:
    response = client.post(
        f"/api/v1/reservations/{reservation_id}/checkout/",
        {"payment_token": token},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"checkout-{reservation_id}",
    )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "processing"


def poll(client, reservation_id: str, log_path: Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/reservations/{reservation_id}/").json()
        if body["status"] in FINAL:
            return body
        time.sleep(0.1)
    raise AssertionError(f"still {body['status']}; worker log:\n{log_path.read_text()[-4000:]}")


def test_reserve_checkout_poll_completes_with_contiguous_numbers(player, house, worker) -> None:
    client = client_for(player)
    first = reserve_via_api(client, house, 3)
    second = reserve_via_api(client, house, 2)
    checkout_via_api(client, first, "tok_ok")
    checkout_via_api(client, second, "tok_ok")
    one, two = poll(client, first, worker), poll(client, second, worker)
    assert one["status"] == two["status"] == "completed"
    blocks = sorted([one["tickets"], two["tickets"]])
    assert blocks == [[1, 2, 3], [4, 5]] or blocks == [[1, 2], [3, 4, 5]]
    call_command("check_integrity")


def test_declined_card_fails_and_the_inventory_comes_back(player, house, worker) -> None:
    client = client_for(player)
    reservation_id = reserve_via_api(client, house, 4)
    house.refresh_from_db()
    assert house.tickets_reserved == 4
    checkout_via_api(client, reservation_id, "tok_declined")
    body = poll(client, reservation_id, worker)
    assert (body["status"], body["failure_code"], body["tickets"]) == (
        "failed",
        "card_declined",
        [],
    )
    house.refresh_from_db()
    assert (house.tickets_reserved, house.tickets_sold, house.participants_count) == (0, 0, 0)
    call_command("check_integrity")


def test_worker_killed_after_the_charge_ends_with_one_charge_and_one_ticket_set(
    player, house, worker
) -> None:
    failpoints.arm("checkout.after_charge", action="crash", times=1)
    client = client_for(player)
    reservation_id = reserve_via_api(client, house, 3)
    checkout_via_api(client, reservation_id, "tok_ok")
    body = poll(client, reservation_id, worker)
    assert body["status"] == "completed" and body["tickets"] == [1, 2, 3]
    log = worker.read_text()
    assert "WorkerLostError" in log or "exited with 'signal 9 (SIGKILL)'" in log
    assert SandboxLedgerEntry.objects.filter(kind="charge").count() == 1
    assert Ticket.objects.count() == 3
    call_command("check_integrity")


def test_worker_killed_after_the_refund_ends_with_one_refund(player, house, request) -> None:
    failpoints.arm("refund.after_gateway", action="crash", times=1)
    client = client_for(player)
    reservation_id = reserve_via_api(client, house, 2)
    celery_app.conf.task_always_eager = False  # the message waits in the broker
    try:
        checkout_via_api(client, reservation_id, "tok_ok")
    finally:
        celery_app.conf.task_always_eager = True
    House.objects.filter(pk=house.pk).update(status=House.Status.PAUSED)  # paid, not issuable
    worker = request.getfixturevalue("worker")  # only now is the checkout task run
    body = poll(client, reservation_id, worker)
    assert (body["status"], body["failure_code"]) == ("refunded", "house_not_on_sale")
    assert "signal 9" in worker.read_text() or "WorkerLostError" in worker.read_text()
    assert SandboxLedgerEntry.objects.filter(kind="refund").count() == 1
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    house.refresh_from_db()
    assert (house.tickets_reserved, house.tickets_sold) == (0, 0)
    call_command("check_integrity")


def test_a_duplicate_task_message_has_one_outcome(player, house, worker) -> None:
    client = client_for(player)
    reservation_id = reserve_via_api(client, house, 2)
    checkout_via_api(client, reservation_id, "tok_ok")
    process_checkout.delay(reservation_id)  # the same message again, e.g. redelivered
    process_checkout.delay(reservation_id)
    body = poll(client, reservation_id, worker)
    assert body["status"] == "completed" and body["tickets"] == [1, 2]
    deadline = time.monotonic() + 30
    while len(re.findall(r"checkout\.process\[[^\]]+\] succeeded", worker.read_text())) < 3:
        assert time.monotonic() < deadline, worker.read_text()[-3000:]  # all three ran
        time.sleep(0.1)
    assert Reservation.objects.get(pk=reservation_id).status == "completed"
    assert SandboxLedgerEntry.objects.filter(kind="charge").count() == 1
    assert Ticket.objects.count() == 2
    call_command("check_integrity")


def test_gateway_timeout_while_the_worker_retries_is_finished_by_recovery(
    player, house, worker
) -> None:
    client = client_for(player)
    reservation_id = reserve_via_api(client, house, 2)
    checkout_via_api(client, reservation_id, "tok_timeout")
    deadline = time.monotonic() + 30
    while not SandboxLedgerEntry.objects.filter(kind="charge").exists():
        assert time.monotonic() < deadline, worker.read_text()[-3000:]
        time.sleep(0.1)
    # Charged, but the worker only ever hears timeouts and keeps retrying.
    assert Reservation.objects.get(pk=reservation_id).status == "processing"
    assert recover_stuck_checkouts(older_than=timedelta(0)) == {"completed": 1}
    body = poll(client, reservation_id, worker)
    assert body["status"] == "completed" and body["tickets"] == [1, 2]
    assert SandboxLedgerEntry.objects.filter(kind="charge").count() == 1
    call_command("check_integrity")
