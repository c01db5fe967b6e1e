"""A checkout burst: its purchases are relayed in one batch and their emails sent by one task.

The relay is held back while the purchases are made, as when a relay is already
queued and has not started claiming (``core.outbox._enqueue_relay``), so the
events of every purchase reach the handlers in one batch.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from celery import signals
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.celery import app as celery_app
from core import failpoints, outbox
from core.models import DeadLetter, OutboxDelivery, OutboxEvent
from tests.watchlist.helpers import broker_down, buy, inbox
from tests.watchlist.smtp_server import SmtpServer
from tests.workers import celery_worker
from watchlist import notifications
from watchlist.models import NotificationDelivery

pytestmark = pytest.mark.django_db(transaction=True)

Status = NotificationDelivery.Status


@contextmanager
def relay_held_back() -> Iterator[None]:
    """Events committed inside wait for the next relay, as behind one already queued."""
    cache.set(outbox.RELAY_QUEUED_KEY, 1, timeout=300)
    try:
        yield
    finally:
        cache.delete(outbox.RELAY_QUEUED_KEY)


@pytest.fixture
def tasks_run() -> Iterator[list[tuple[str, list, int]]]:
    """Every task that starts: (name, args, retries)."""
    started: list[tuple[str, list, int]] = []

    def record(task: object, args: tuple, **kwargs: object) -> None:
        started.append((task.name, list(args), task.request.retries or 0))

    signals.task_prerun.connect(record, weak=False)
    yield started
    signals.task_prerun.disconnect(record)


def redeliver_everything() -> None:
    """Every handler gets every event again, as after a relay that crashed before recording."""
    OutboxDelivery.objects.all().delete()
    OutboxEvent.objects.update(delivered_at=None, available_at=timezone.now())


def test_twenty_purchases_in_one_relay_batch_email_each_buyer_once(
    make_person, make_house, tasks_run
) -> None:
    houses = [make_house(title="Villa Norte"), make_house(title="Villa Sul")]
    buyers = [make_person() for _ in range(20)]
    with relay_held_back():
        reservations = [buy(buyer, houses[n % 2], 1 + n % 3) for n, buyer in enumerate(buyers)]
    assert mail.outbox == []

    outbox.relay_pending_events()

    assert len(mail.outbox) == 20
    for buyer, reservation in zip(buyers, reservations, strict=True):
        [message] = inbox(buyer.email)
        assert message.subject == f"Your tickets for {reservation.house.title}"
        delivery = NotificationDelivery.objects.get(recipient=buyer)
        house = reservation.house
        numbers = sorted(reservation.tickets.values_list("ticket_number", flat=True))
        assert delivery.context == {
            "house_id": house.pk,
            "house_title": house.title,
            "house_city": house.city,
            "sales_end_at": house.sales_end_at.isoformat(),
            "ticket_numbers": numbers,
            "reservation_id": str(reservation.pk),
            "total_price": str(reservation.total_price),
            "currency": "EUR",
        }
        assert (delivery.status, delivery.attempts) == (Status.SENT, 1)
    assert [name for name, _, _ in tasks_run if name.startswith("notifications.")] == [
        "notifications.send_batch"
    ]

    redeliver_everything()
    outbox.relay_pending_events()
    assert len(mail.outbox) == 20
    assert NotificationDelivery.objects.count() == 20


def relay_statements() -> CaptureQueriesContext:
    """The relay's statements, its send tasks queued on the real broker (nothing sends them)."""
    celery_app.conf.task_always_eager = False
    try:
        with CaptureQueriesContext(connection) as queries:
            outbox.relay_pending_events()
    finally:
        celery_app.conf.task_always_eager = True
    return queries


def test_the_relay_of_twenty_purchases_costs_the_statements_of_one(make_person, make_house) -> None:
    houses = [make_house(), make_house()]
    with relay_held_back():
        buy(make_person(), houses[0])
    one = relay_statements()
    with relay_held_back():
        for n in range(20):
            buy(make_person(), houses[n % 2])
    twenty = relay_statements()

    assert NotificationDelivery.objects.filter(status=Status.PENDING).count() == 21
    assert len(twenty) == len(one), "\n".join(q["sql"] for q in twenty.captured_queries)
    assert len(one) <= 20


def test_a_row_the_mail_server_refuses_is_retried_alone(
    make_person, make_house, settings, tasks_run
) -> None:
    buyers = [make_person() for _ in range(5)]
    refused = buyers[2]
    with SmtpServer(refuse={refused.email: 1}) as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        house = make_house(title="Casa Rio")
        with relay_held_back():
            for buyer in buyers:
                buy(buyer, house)
        outbox.relay_pending_events()

    assert sorted(m["to"][0] for m in server.messages) == sorted(b.email for b in buyers)
    retried = NotificationDelivery.objects.get(recipient=refused)
    assert (retried.status, retried.attempts, retried.last_error) == (Status.SENT, 2, "")
    others = NotificationDelivery.objects.exclude(pk=retried.pk)
    assert {(d.status, d.attempts) for d in others} == {(Status.SENT, 1)}
    # One batch for all five, then the refused row alone, as its own task's first retry.
    sends = [(name, args, retries) for name, args, retries in tasks_run if "send" in name]
    assert [name for name, _, _ in sends] == ["notifications.send_batch", "notifications.send"]
    assert sends[1][1:] == ([retried.pk], 1)
    assert not DeadLetter.objects.exists()


def test_a_batch_out_of_time_hands_its_untried_rows_to_a_new_batch(
    make_person, make_house, settings, tasks_run
) -> None:
    buyers = [make_person() for _ in range(3)]
    house = make_house()
    with broker_down():
        for buyer in buyers:
            buy(buyer, house)
    ids = list(NotificationDelivery.objects.order_by("pk").values_list("pk", flat=True))
    settings.CELERY_TASK_MAX_RUNTIME_SECONDS = 0  # every batch is out of time after one row

    tasks_run.clear()
    notifications.enqueue_sends(ids)

    assert tasks_run == [
        ("notifications.send_batch", [ids], 0),
        ("notifications.send_batch", [ids[1:]], 0),
        ("notifications.send_batch", [ids[2:]], 0),
    ]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(b.email for b in buyers)
    assert {(d.status, d.attempts) for d in NotificationDelivery.objects.all()} == {
        (Status.SENT, 1)
    }


def wait_for(condition: Callable[[], bool], worker_log: Callable[[], str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, worker_log()[-4000:]
        time.sleep(0.2)


@pytest.mark.slow
def test_a_send_batch_killed_mid_way_is_finished_by_the_stalled_sweep(
    make_person, make_house, settings, monkeypatch
) -> None:
    buyers = [make_person() for _ in range(3)]
    house = make_house(title="Casa Mar")
    with broker_down():  # the rows are written; their batch is queued below
        for buyer in buyers:
            buy(buyer, house)
    ids = list(NotificationDelivery.objects.order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 3

    with SmtpServer() as server:
        monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{server.port}")
        # The worker dies (SIGKILL) right after claiming the first row of the batch.
        failpoints.arm("notifications.claimed", action="crash", times=1)
        with celery_worker(settings, name="notifications-worker") as worker:
            notifications.enqueue_sends(ids)
            # The batch runs again (late ack); the row the dead worker held waits for its lease.
            wait_for(lambda: len(server.messages) == 2, worker.log)
            assert failpoints.hits("notifications.claimed") == 1
            claimed = NotificationDelivery.objects.get(status=Status.SENDING)
            assert claimed.pk == ids[0] and claimed.email not in {
                m["to"][0] for m in server.messages
            }

            NotificationDelivery.objects.filter(pk=claimed.pk).update(
                claimed_at=timezone.now() - timedelta(hours=1)  # the lease has run out
            )
            assert notifications.send_stalled_notifications() == 1
            wait_for(lambda: len(server.messages) == 3, worker.log)
            assert "signal 9" in worker.log() or "WorkerLostError" in worker.log()

    assert sorted(m["to"][0] for m in server.messages) == sorted(b.email for b in buyers)
    claimed.refresh_from_db()
    assert (claimed.status, claimed.attempts) == (Status.SENT, 2)
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {Status.SENT}
