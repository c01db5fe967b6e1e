"""The transactional outbox: events exist only with their change, are delivered at least
once per handler, and a handler that finished is not called again."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from core import outbox
from core.models import OutboxDelivery, OutboxEvent

calls: Counter = Counter()
failures_left = {"count": 0}


@outbox.register("test.counted", name="tests.count_calls")
def count_calls(event: OutboxEvent) -> None:
    calls[("count", event.pk)] += 1


@outbox.register("test.flaky", name="tests.flaky")
def flaky(event: OutboxEvent) -> None:
    if failures_left["count"] > 0:
        failures_left["count"] -= 1
        raise RuntimeError("webhook endpoint down")
    calls[("flaky", event.pk)] += 1


@outbox.register("test.flaky", name="tests.steady")
def steady(event: OutboxEvent) -> None:
    calls[("steady", event.pk)] += 1


@pytest.fixture(autouse=True)
def reset_counters() -> None:
    calls.clear()
    failures_left["count"] = 0


def make_due(*events: OutboxEvent) -> None:
    OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(
        available_at=timezone.now() - timedelta(seconds=1)
    )


@pytest.mark.django_db(transaction=True)
def test_an_event_is_relayed_once_its_transaction_commits() -> None:
    with transaction.atomic():
        event = outbox.emit("test.counted", {"reservation_id": "r1"})
        assert calls[("count", event.pk)] == 0  # nothing leaves before the commit
    event.refresh_from_db()
    assert event.delivered_at is not None
    assert calls[("count", event.pk)] == 1
    assert set(OutboxDelivery.objects.values_list("handler", flat=True)) == {
        "tests.count_calls",
        "core.log_event",
        "core.count_event",
    }


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_leaves_no_event() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.emit("test.counted", {"x": 1})
        raise RuntimeError("the change failed")
    assert not OutboxEvent.objects.exists()
    assert not calls


@pytest.mark.django_db(transaction=True)
def test_emit_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        outbox.emit("test.counted", {})


@pytest.mark.django_db(transaction=True)
def test_a_failing_handler_is_retried_without_repeating_the_ones_that_finished() -> None:
    failures_left["count"] = 1
    with transaction.atomic():
        event = outbox.emit("test.flaky", {})
    event.refresh_from_db()
    assert event.delivered_at is None and "webhook endpoint down" in event.last_error
    assert calls[("steady", event.pk)] == 1 and calls[("flaky", event.pk)] == 0
    make_due(event)
    assert outbox.relay_pending_events() == 1
    event.refresh_from_db()
    assert event.delivered_at is not None
    assert calls[("steady", event.pk)] == 1  # not called again
    assert calls[("flaky", event.pk)] == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_claimed_by_a_relay_that_died_is_delivered_after_its_lease() -> None:
    with transaction.atomic():
        event = OutboxEvent.objects.create(event_type="test.counted", payload={})
    claimed = outbox._claim_batch(10)  # a relay claims it, then dies before delivering
    assert [e.pk for e in claimed] == [event.pk]
    assert outbox.relay_pending_events() == 0  # still leased to the dead relay
    make_due(event)
    assert outbox.relay_pending_events() == 1
    assert calls[("count", event.pk)] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_deliver_each_event_once() -> None:
    with transaction.atomic():
        events = [
            OutboxEvent.objects.create(event_type="test.counted", payload={"n": n})
            for n in range(60)
        ]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def relay() -> None:
        from django.db import connection

        try:
            barrier.wait()
            outbox.relay_pending_events(batch_size=5)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(calls[("count", e.pk)] == 1 for e in events)
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()
