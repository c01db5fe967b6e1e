"""Checkouts of one house share one task message while a drain of the house is queued or running.

The first checkout of a burst queues ``checkout.process``; the ones committed
while that drain is queued or running send nothing, and the drain claims them
all. These tests read the messages from the real (test) Redis broker, which no
worker consumes here, and run the drain in-process.
"""

import ast
import json
from datetime import timedelta
from io import StringIO

import pytest
import redis
from django.core.cache import caches
from django.core.management import call_command
from django.utils import timezone

from config.celery import app as celery_app
from payments.gateways import GatewayUnavailable
from payments.models import Payment
from purchases.services import checkout
from purchases.services.checkout import process_checkout, start_checkout
from reservations.models import Reservation
from tests.purchases.conftest import reserve

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_task_runs"),
]


def checkout_messages() -> list[str]:
    """Reservation ids of the ``checkout.process`` messages waiting in the broker."""
    client = redis.Redis.from_url(celery_app.conf.broker_url)
    ids = []
    for raw in client.lrange("celery", 0, -1):
        headers = json.loads(raw)["headers"]
        if headers["task"] == "checkout.process":
            ids.append(ast.literal_eval(headers["argsrepr"])[0])
    client.close()
    return ids


def start(make_player, house, token: str = "tok_ok") -> Reservation:
    player = make_player()
    reservation = reserve(player, house)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token=token)
    return reservation


def statuses(reservations: list[Reservation]) -> list[str]:
    return [Reservation.objects.get(pk=r.pk).status for r in reservations]


def test_a_burst_of_checkouts_sends_one_message_and_its_drain_completes_them_all(
    make_player, make_house
) -> None:
    house, other = make_house(), make_house()
    burst = [start(make_player, house) for _ in range(5)]
    elsewhere = start(make_player, other)
    # One message per house: the first checkout's; the other four coalesced onto it.
    assert sorted(checkout_messages()) == sorted([str(burst[0].pk), str(elsewhere.pk)])

    assert process_checkout(reservation_id=burst[0].pk) == "completed"
    assert statuses(burst) == ["completed"] * 5
    assert statuses([elsewhere]) == ["processing"]  # another house, its own drain

    # The drain let go of the flag: the house's next checkout queues a message again.
    later = start(make_player, house)
    assert checkout_messages().count(str(later.pk)) == 1


def test_a_checkout_committed_while_the_drain_lets_go_is_drained_by_it(
    make_player, house, monkeypatch
) -> None:
    first = start(make_player, house)
    late: list[Reservation] = []
    let_go = checkout._drop_drain_flag

    def commit_a_checkout_then_let_go(house_id: int) -> None:
        if not late:
            # Committed after the drain's last (empty) claim, while it still holds the flag:
            # this checkout sends no message, so only the drain's second look can find it.
            late.append(start(make_player, house))
            assert str(late[0].pk) not in checkout_messages()
        let_go(house_id)

    monkeypatch.setattr(checkout, "_drop_drain_flag", commit_a_checkout_then_let_go)
    assert process_checkout(reservation_id=first.pk) == "completed"
    assert statuses(late) == ["completed"]


def test_an_already_settled_message_still_drains_the_checkouts_that_coalesced_onto_it(
    make_player, house
) -> None:
    first = start(make_player, house)
    coalesced = [start(make_player, house) for _ in range(3)]
    assert checkout_messages() == [str(first.pk)]
    # Its own checkout was settled by another task (e.g. a redelivered message).
    Reservation.objects.filter(pk=first.pk).update(status=Reservation.Status.CANCELLED)
    assert process_checkout(reservation_id=first.pk) == "cancelled"
    assert statuses(coalesced) == ["completed"] * 3


def test_a_lost_drain_message_holds_the_house_back_only_until_its_flag_expires(
    make_player, house, monkeypatch
) -> None:
    monkeypatch.setattr(checkout, "DRAIN_FLAG_TTL_SECONDS", 1)
    lost = start(make_player, house)
    redis.Redis.from_url(celery_app.conf.broker_url).delete("celery")  # the message is lost
    caches["default"].delete(checkout.DRAIN_FLAG_KEY.format(house.pk))  # ...and its flag expired
    later = start(make_player, house)
    assert checkout_messages() == [str(later.pk)]
    assert process_checkout(reservation_id=later.pk) == "completed"
    assert statuses([lost, later]) == ["completed", "completed"]


def lose_messages_and_flags(*houses) -> None:
    """The broker restarted empty: the queued messages and the drain flags are gone."""
    redis.Redis.from_url(celery_app.conf.broker_url).delete("celery")
    for house in houses:
        caches["default"].delete(checkout.DRAIN_FLAG_KEY.format(house.pk))


def age(reservations: list[Reservation], seconds: float) -> None:
    Reservation.objects.filter(pk__in=[r.pk for r in reservations]).update(
        processed_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_checkouts_stranded_by_a_lost_message_get_a_drain_of_their_house_requeued(
    make_player, make_house
) -> None:
    house, other = make_house(), make_house()
    stranded = [start(make_player, house) for _ in range(3)]
    elsewhere = start(make_player, other)
    lose_messages_and_flags(house, other)
    stale = checkout.STRANDED_AFTER.total_seconds() + 1
    for index, reservation in enumerate([*stranded, elsewhere]):
        age([reservation], stale + 10 - index)  # in the order they started

    assert checkout.requeue_stranded_checkouts() == 2
    # One drain per house, sent for its oldest stranded checkout.
    assert sorted(checkout_messages()) == sorted([str(stranded[0].pk), str(elsewhere.pk)])
    assert process_checkout(reservation_id=stranded[0].pk) == "completed"
    assert process_checkout(reservation_id=elsewhere.pk) == "completed"
    assert statuses([*stranded, elsewhere]) == ["completed"] * 4


def test_requeueing_leaves_young_checkouts_and_houses_whose_drain_is_queued(
    make_player, make_house
) -> None:
    queued_house, young_house = make_house(), make_house()
    waiting = start(make_player, queued_house)  # its drain is queued: the flag is set
    young = start(make_player, young_house)
    caches["default"].delete(checkout.DRAIN_FLAG_KEY.format(young_house.pk))
    age([waiting], checkout.STRANDED_AFTER.total_seconds() + 1)
    before = checkout_messages()

    assert checkout.requeue_stranded_checkouts() == 0
    assert checkout_messages() == before
    assert statuses([waiting, young]) == ["processing", "processing"]


def test_a_checkout_whose_charge_started_is_left_to_recovery_not_requeued(
    make_player, house
) -> None:
    started = start(make_player, house)
    Payment.objects.filter(reservation=started).update(charge_attempted_at=timezone.now())
    lose_messages_and_flags(house)
    age([started], checkout.STRANDED_AFTER.total_seconds() + 1)

    assert checkout.requeue_stranded_checkouts() == 0
    assert checkout_messages() == []


def test_the_requeue_command_queues_the_drain_as_beat_would(make_player, house) -> None:
    stranded = start(make_player, house)
    lose_messages_and_flags(house)
    age([stranded], checkout.STRANDED_AFTER.total_seconds() + 1)
    out = StringIO()
    call_command("requeue_stranded_checkouts", stdout=out)
    assert out.getvalue().strip() == "drains queued: 1"
    assert checkout_messages() == [str(stranded.pk)]


def test_without_the_cache_every_checkout_sends_its_own_message(
    make_player, house, settings
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    reservations = [start(make_player, house) for _ in range(3)]
    assert sorted(checkout_messages()) == sorted(str(r.pk) for r in reservations)


def test_a_member_whose_charge_outcome_is_unknown_gets_its_own_delayed_task(
    make_player, house
) -> None:
    first = start(make_player, house)
    unknown = start(make_player, house, token="tok_unavailable")
    assert checkout_messages() == [str(first.pk)]
    assert process_checkout(reservation_id=first.pk) == "completed"
    # Claimed by the drain, so no other drain takes it: its own task retries the charge.
    assert Payment.objects.get(reservation=unknown).charge_attempted_at is not None
    assert sorted(checkout_messages()) == sorted([str(first.pk), str(unknown.pk)])
    with pytest.raises(GatewayUnavailable):
        process_checkout(reservation_id=unknown.pk)
    assert statuses([unknown]) == ["processing"]


def test_a_drain_at_its_bound_hands_the_rest_of_its_house_to_a_new_task(
    make_player, house, monkeypatch
) -> None:
    monkeypatch.setattr(checkout, "MAX_DRAIN_BATCHES", 1)
    queued = [start(make_player, house) for _ in range(checkout.BATCH_SIZE + 2)]
    assert checkout_messages() == [str(queued[0].pk)]
    assert process_checkout(reservation_id=queued[0].pk) == "completed"
    done = statuses(queued)
    assert done[: checkout.BATCH_SIZE] == ["completed"] * checkout.BATCH_SIZE
    assert done[checkout.BATCH_SIZE :] == ["processing"] * 2
    # The oldest checkout left gets the message; the flag stays taken for that drain.
    assert sorted(checkout_messages()) == sorted([str(queued[0].pk), str(queued[-2].pk)])
    assert caches["default"].get(checkout.DRAIN_FLAG_KEY.format(house.pk)) is not None
    assert process_checkout(reservation_id=queued[-2].pk) == "completed"
    assert statuses(queued[-2:]) == ["completed"] * 2
