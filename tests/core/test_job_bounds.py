"""Sweeping jobs: a batch size and a per-run bound, and no new batch once the worker shuts down.

Each job is given more due rows than its bound allows in one run (small batch
sizes keep the tests quick): one run handles at most the bound, the next run
goes on. With the shutdown flag set, a run stops after its current batch. The
flag is set by Celery's ``worker_shutting_down`` signal in the worker's main
process and read by the forked pool processes that run the jobs: both shown.
"""

import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery import signals
from django.db import transaction
from django.utils import timezone

from core import outbox, shutdown
from core.models import IdempotencyRecord, OutboxEvent
from core.services import purge_expired_idempotency_keys
from reservations.models import Reservation
from reservations.services import expire_due_reservations, reserve_tickets

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def shutdown_flag() -> Iterator[None]:
    shutdown.clear()
    yield
    shutdown.clear()


def emit_events(count: int) -> None:
    with transaction.atomic():
        for n in range(count):
            outbox.emit("tests.bounded", {"n": n})


def undelivered() -> int:
    return OutboxEvent.objects.filter(event_type="tests.bounded", delivered_at__isnull=True).count()


def expired_keys(player: object, count: int) -> None:
    past = timezone.now() - timedelta(hours=1)
    IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(
            user=player, key=f"old-{n}", fingerprint="f", created_at=past, expires_at=past
        )
        for n in range(count)
    )


def due_reservations(player: object, house: object, count: int) -> None:
    for _ in range(count):
        reserve_tickets(
            player=player, house_id=house.pk, quantity=1, idempotency_key=uuid.uuid4().hex
        )
    Reservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))


def pending() -> int:
    return Reservation.objects.filter(status=Reservation.Status.PENDING).count()


# --- per-run bounds ------------------------------------------------------------------


def test_outbox_relay_delivers_at_most_its_bound_per_run() -> None:
    emit_events(5)
    assert outbox.relay_pending_events(batch_size=2, max_batches=2) == 4
    assert undelivered() == 1
    assert outbox.relay_pending_events(batch_size=2, max_batches=2) == 1  # the next run
    assert undelivered() == 0


def test_idempotency_purge_deletes_at_most_its_bound_per_run(player) -> None:
    expired_keys(player, 5)
    assert purge_expired_idempotency_keys(batch_size=2, max_batches=2) == 4
    assert IdempotencyRecord.objects.count() == 1
    assert purge_expired_idempotency_keys(batch_size=2, max_batches=2) == 1


def test_expiry_expires_at_most_its_bound_per_run_across_houses(player, make_house) -> None:
    first, second = make_house(total_tickets=10), make_house(total_tickets=10)
    due_reservations(player, first, 3)
    due_reservations(player, second, 2)
    # 3 batches of 2 in all: first house 2 + 1 (short batch: its last), second house 2.
    assert expire_due_reservations(batch_size=2, max_batches=2) == 3
    assert pending() == 2
    assert expire_due_reservations(batch_size=2, max_batches=2) == 2
    assert pending() == 0


def test_default_bounds_are_stated() -> None:
    from core.outbox import RELAY_BATCH_SIZE, RELAY_MAX_BATCHES
    from core.services import PURGE_BATCH_SIZE, PURGE_MAX_BATCHES
    from reservations.services.lifecycle import EXPIRY_BATCH_SIZE, EXPIRY_MAX_BATCHES

    assert (RELAY_BATCH_SIZE, RELAY_MAX_BATCHES) == (100, 50)
    assert (PURGE_BATCH_SIZE, PURGE_MAX_BATCHES) == (5000, 20)
    assert (EXPIRY_BATCH_SIZE, EXPIRY_MAX_BATCHES) == (200, 50)


# --- shutdown between batches ----------------------------------------------------------


def test_relay_stops_after_the_current_batch_when_the_worker_shuts_down() -> None:
    emit_events(5)
    shutdown.request()
    assert outbox.relay_pending_events(batch_size=2, max_batches=10) == 2
    assert undelivered() == 3
    shutdown.clear()
    assert outbox.relay_pending_events(batch_size=2, max_batches=10) == 3


def test_purge_stops_after_the_current_batch_when_the_worker_shuts_down(player) -> None:
    expired_keys(player, 5)
    shutdown.request()
    assert purge_expired_idempotency_keys(batch_size=2, max_batches=10) == 2
    assert IdempotencyRecord.objects.count() == 3


def test_expiry_stops_after_the_current_batch_when_the_worker_shuts_down(
    player, make_house
) -> None:
    house = make_house(total_tickets=10)
    due_reservations(player, house, 5)
    shutdown.request()
    assert expire_due_reservations(batch_size=2, max_batches=10) == 2
    assert pending() == 3


def test_each_stops_before_the_next_item_once_shutdown_is_requested() -> None:
    seen = []
    for item in shutdown.each("test", [1, 2, 3]):
        seen.append(item)
        shutdown.request()
    assert seen == [1]


def test_celery_worker_shutting_down_signal_sets_the_flag() -> None:
    assert not shutdown.requested()
    signals.worker_shutting_down.send(sender="celery@test", sig="SIGTERM", how="Warm", exitcode=0)
    assert shutdown.requested()


def test_a_forked_pool_process_sees_the_flag_its_parent_sets_later() -> None:
    child = os.fork()
    if child == 0:  # the pool process: wait for the main process's shutdown
        deadline = time.monotonic() + 10
        while not shutdown.requested() and time.monotonic() < deadline:
            time.sleep(0.01)
        os._exit(0 if shutdown.requested() else 1)
    time.sleep(0.2)
    shutdown.request()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_stuck_checkout_recovery_stops_before_the_next_gateway_call_on_shutdown(
    player, make_house
) -> None:
    from purchases.services.checkout import recover_stuck_checkouts, start_checkout

    house = make_house(total_tickets=10)
    due_reservations(player, house, 3)
    Reservation.objects.update(expires_at=timezone.now() + timedelta(minutes=5))
    for reservation in Reservation.objects.all():
        # The enqueue waits for a commit the test's transaction never makes: left processing.
        start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    shutdown.request()
    outcomes = recover_stuck_checkouts(older_than=timedelta(0))
    assert sum(outcomes.values()) == 1
    assert Reservation.objects.filter(status=Reservation.Status.PROCESSING).count() == 2


# --- single-batch jobs: one batch per run ------------------------------------------------


def test_stuck_checkout_recovery_resolves_at_most_one_batch_per_run(
    player, make_house, monkeypatch
) -> None:
    from purchases.services import checkout

    house = make_house(total_tickets=10)
    due_reservations(player, house, 3)
    Reservation.objects.update(expires_at=timezone.now() + timedelta(minutes=5))
    for reservation in Reservation.objects.all():
        checkout.start_checkout(
            player=player, reservation_id=reservation.pk, payment_token="tok_ok"
        )
    monkeypatch.setattr(checkout, "RECOVERY_BATCH_SIZE", 2)
    assert sum(checkout.recover_stuck_checkouts(older_than=timedelta(0)).values()) == 2
    assert sum(checkout.recover_stuck_checkouts(older_than=timedelta(0)).values()) == 1


def test_closing_soon_alerts_raise_at_most_one_batch_per_run(make_house) -> None:
    from watchlist.notifications import raise_closing_soon_alerts

    for _ in range(3):
        make_house(total_tickets=10, sales_end_at=timezone.now() + timedelta(hours=2))
    assert raise_closing_soon_alerts(batch_size=2) == 2
    assert raise_closing_soon_alerts(batch_size=2) == 1
    assert raise_closing_soon_alerts(batch_size=2) == 0


def test_stalled_notifications_are_requeued_at_most_one_batch_per_run(player, settings) -> None:
    from watchlist.models import NotificationDelivery
    from watchlist.notifications import send_stalled_notifications

    NotificationDelivery.objects.bulk_create(
        NotificationDelivery(
            event_id=n, recipient=player, kind="purchase_completed", email="p@example.com"
        )
        for n in range(3)
    )
    stale = timezone.now() - timedelta(seconds=settings.NOTIFICATION_STALLED_AFTER_SECONDS + 60)
    NotificationDelivery.objects.update(updated_at=stale)
    assert send_stalled_notifications(batch_size=2) == 2
    assert (
        send_stalled_notifications(batch_size=2) == 1
    )  # the two were touched: left to their tasks
