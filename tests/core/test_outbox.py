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
batch_calls: list[list[int]] = []
poison = {"on": True}


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


@outbox.register("test.batched", name="tests.batched", batch=True)
def batched(events: list[OutboxEvent]) -> None:
    if poison["on"] and any(event.payload.get("poisoned") for event in events):
        raise RuntimeError("cannot handle a poisoned event")
    batch_calls.append([event.pk for event in events])


@pytest.fixture(autouse=True)
def reset_counters() -> None:
    calls.clear()
    failures_left["count"] = 0
    batch_calls.clear()
    poison["on"] = True


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


def emit_together(*payloads: dict) -> list[OutboxEvent]:
    with transaction.atomic():
        return outbox.emit_many([("test.batched", payload) for payload in payloads])


@pytest.mark.django_db(transaction=True)
def test_a_batch_handler_is_called_once_for_every_event_of_the_relay_batch() -> None:
    events = emit_together(*({"n": n} for n in range(5)))
    assert batch_calls == [[e.pk for e in events]]
    assert OutboxDelivery.objects.filter(handler="tests.batched").count() == 5
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_is_retried_event_by_event_and_only_the_poisoned_event_waits() -> None:
    first, poisoned, last = emit_together({"n": 1}, {"poisoned": True}, {"n": 3})
    # The batch call raised; each event was then handed over alone.
    assert batch_calls == [[first.pk], [last.pk]]
    for event in (first, poisoned, last):
        event.refresh_from_db()
    assert first.delivered_at is not None and last.delivered_at is not None
    assert poisoned.delivered_at is None
    assert "cannot handle a poisoned event" in poisoned.last_error
    assert poisoned.available_at > timezone.now()  # backed off, like any failing handler
    assert first.last_error == last.last_error == ""

    poison["on"] = False  # the cause is fixed
    make_due(poisoned)
    assert outbox.relay_pending_events() == 1
    assert batch_calls == [[first.pk], [last.pk], [poisoned.pk]]
    poisoned.refresh_from_db()
    assert poisoned.delivered_at is not None and poisoned.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_batch_skips_the_events_the_handler_finished() -> None:
    events = emit_together(*({"n": n} for n in range(4)))
    assert batch_calls == [[e.pk for e in events]]
    # A relay died after the handler finished the first three but before recording the fourth.
    OutboxDelivery.objects.filter(event=events[3], handler="tests.batched").delete()
    OutboxEvent.objects.update(delivered_at=None, available_at=timezone.now())
    assert outbox.relay_pending_events() == 4
    assert batch_calls == [[e.pk for e in events], [events[3].pk]]
