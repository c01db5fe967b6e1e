"""Tasks that exhaust their retries land in core.DeadLetter and can be replayed."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from celery import shared_task
from django.core.management import call_command
from django.urls import reverse

from config.celery import app as celery_app
from core.dead_letters import requeue_dead_letters
from core.models import DeadLetter
from core.request_context import bind_request_id
from core.tasks import ReliableTask

runs = {"count": 0, "healthy": False}


@shared_task(name="tests.always_failing", base=ReliableTask, max_retries=2)
def always_failing(order_id: int, *, note: str) -> str:
    runs["count"] += 1
    if not runs["healthy"]:
        raise ConnectionError(f"downstream refused order {order_id}")
    return "done"


@pytest.fixture(autouse=True)
def reset_runs() -> None:
    runs.update(count=0, healthy=False)


@pytest.fixture(autouse=True)
def eager_retry_chain() -> Iterator[None]:
    # Eager runs stop at the first Retry while task_eager_propagates is on; off,
    # they follow the whole retry chain as a worker would.
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = True


def fail_for_good() -> None:
    bind_request_id("req-dead-1")
    try:
        result = always_failing.delay(7, note="gift")
    finally:
        bind_request_id(None)
    assert result.failed()


@pytest.mark.django_db(transaction=True)
def test_a_task_that_exhausts_its_retries_is_dead_lettered_once() -> None:
    fail_for_good()
    assert runs["count"] == 3  # the first run and two retries
    letter = DeadLetter.objects.get()
    assert letter.task_name == "tests.always_failing"
    assert letter.args == [7] and letter.kwargs == {"note": "gift"}
    assert letter.request_id == "req-dead-1"
    assert letter.exception_type == "builtins.ConnectionError"
    assert letter.last_error == "downstream refused order 7"
    assert letter.retries == 2 and letter.status == DeadLetter.Status.OPEN


@pytest.mark.django_db(transaction=True)
def test_replay_dead_letters_command_requeues_the_task() -> None:
    fail_for_good()
    runs["healthy"] = True
    call_command("replay_dead_letters")
    assert runs["count"] == 4
    letter = DeadLetter.objects.get()
    assert letter.status == DeadLetter.Status.REQUEUED and letter.requeue_count == 1
    call_command("replay_dead_letters")  # nothing open any more: nothing runs
    assert runs["count"] == 4


@pytest.mark.django_db(transaction=True)
def test_staff_requeue_from_the_admin(staff, staff_client) -> None:
    fail_for_good()
    runs["healthy"] = True
    client = staff_client
    letter = DeadLetter.objects.get()
    response = client.post(
        reverse("admin:core_deadletter_changelist"),
        {"action": "requeue", "_selected_action": [letter.pk]},
    )
    assert response.status_code == 302
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.REQUEUED and letter.requeued_by == staff
    assert runs["count"] == 4


@contextmanager
def broker_unreachable() -> Iterator[None]:
    """Tasks are really published, to a broker port where nothing listens."""
    conf = celery_app.conf
    saved = conf.broker_url, conf.task_always_eager
    conf.broker_url, conf.task_always_eager = "redis://127.0.0.1:1/0", False
    forget_broker_connections()
    try:
        yield
    finally:
        conf.broker_url, conf.task_always_eager = saved
        forget_broker_connections()


def forget_broker_connections() -> None:
    # The pools were built for the previous broker url (what Celery itself resets after fork).
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_letters_that_cannot_be_sent_stay_open_and_a_later_requeue_sends_them() -> None:
    fail_for_good()
    fail_for_good()
    runs["healthy"] = True
    with broker_unreachable():
        assert requeue_dead_letters() == 0
    letters = list(DeadLetter.objects.order_by("pk"))
    assert [letter.status for letter in letters] == [DeadLetter.Status.OPEN] * 2
    assert all(letter.requeue_error for letter in letters)
    runs["count"] = 0
    assert requeue_dead_letters() == 2  # the broker is back
    assert runs["count"] == 2
    assert set(DeadLetter.objects.values_list("status", "requeue_error")) == {
        (DeadLetter.Status.REQUEUED, "")
    }
