"""drand mode: the runner fetches the round fixed at close from a relay (a local one here)."""

from datetime import UTC, datetime, timedelta

import pytest

from core.models import OutboxEvent
from draws import verify
from draws.models import Draw
from draws.services.passes import run_due
from lottery.models import House
from tests.draws.drand_server import local_relay
from tests.draws.flow import activated_house, buy, live_draw
from tests.draws.quicknet_rounds import QUICKNET_ROUNDS, RECORDED_ROUND

pytestmark = [pytest.mark.django_db(transaction=True)]

# The moment whose close fixes RECORDED_ROUND with the default 300 s delay.
ROUND_TIME = verify.QUICKNET.genesis_time + (RECORDED_ROUND - 1) * verify.QUICKNET.period
CLOSE_AT = datetime.fromtimestamp(ROUND_TIME - 300, UTC)


@pytest.fixture
def relay(settings):
    with local_relay() as relay:
        settings.DRAW_ENTROPY_SOURCE = "drand"
        settings.DRAW_BEACON_URLS = [relay.url]
        settings.DRAW_BEACON_ATTEMPTS = 1
        settings.DRAW_BEACON_TIMEOUT_SECONDS = 2
        yield relay


def closed_at_the_recorded_round(make_player) -> House:
    """A house sold now, whose sales ended just before the moment fixing RECORDED_ROUND."""
    house = activated_house(total_tickets=30)
    for quantity in (2, 3, 1):
        buy(make_player(), house, quantity)
    House.objects.filter(pk=house.pk).update(
        sales_start_at=CLOSE_AT - timedelta(days=10), sales_end_at=CLOSE_AT - timedelta(minutes=1)
    )
    run_due(now=CLOSE_AT)
    return house


def test_runner_fetches_the_fixed_round_and_completes_the_draw(relay, make_player) -> None:
    house = closed_at_the_recorded_round(make_player)
    draw = live_draw(house)
    assert draw.beacon_round == RECORDED_ROUND
    relay.rounds[RECORDED_ROUND] = QUICKNET_ROUNDS[RECORDED_ROUND]

    summary = run_due()

    draw.refresh_from_db()
    assert summary["run"] == {"completed": 1}
    assert draw.status == Draw.Status.COMPLETED
    assert draw.entropy_source == "drand"
    assert draw.beacon_signature == QUICKNET_ROUNDS[RECORDED_ROUND]["signature"]
    assert draw.beacon_randomness == QUICKNET_ROUNDS[RECORDED_ROUND]["randomness"]
    assert draw.conducted_by is None
    assert relay.requests == [f"/{verify.QUICKNET.hash}/public/{RECORDED_ROUND}"]
    house.refresh_from_db()
    assert house.status == House.Status.DRAWN
    assert OutboxEvent.objects.filter(event_type="draw.completed").count() == 1


def test_a_round_not_yet_out_is_not_fetched(relay, make_player) -> None:
    house = closed_at_the_recorded_round(make_player)
    assert run_due(now=CLOSE_AT + timedelta(seconds=10))["run"] == {"round_not_due": 1}
    assert relay.requests == []
    assert live_draw(house).status == Draw.Status.WAITING_ENTROPY


def test_relay_without_the_round_fails_the_attempt_and_the_next_pass_completes(
    relay, make_player
) -> None:
    house = closed_at_the_recorded_round(make_player)
    assert run_due()["run"] == {"failed": 1}
    draw = live_draw(house)
    assert draw.status == Draw.Status.FAILED
    assert "BeaconUnavailable" in draw.last_error
    relay.rounds[RECORDED_ROUND] = QUICKNET_ROUNDS[RECORDED_ROUND]
    assert run_due()["run"] == {"completed": 1}
    draw.refresh_from_db()
    assert (draw.status, draw.attempts) == (Draw.Status.COMPLETED, 2)


def test_another_rounds_signature_from_a_relay_is_refused(relay, make_player) -> None:
    house = closed_at_the_recorded_round(make_player)
    relay.rounds[RECORDED_ROUND] = QUICKNET_ROUNDS[3]  # a real signature, of another round
    assert run_due()["run"] == {"failed": 1}
    draw = live_draw(house)
    assert draw.status == Draw.Status.FAILED
    assert "BeaconInvalid" in draw.last_error
    assert draw.beacon_randomness == ""


def test_staff_paste_the_fixed_rounds_signature_when_no_relay_answers(
    relay, make_player, staff
) -> None:
    from draws.services.running import conduct_draw

    house = closed_at_the_recorded_round(make_player)
    draw = conduct_draw(
        draw_id=live_draw(house).pk,
        actor=staff,
        beacon_round=RECORDED_ROUND,
        beacon_signature=QUICKNET_ROUNDS[RECORDED_ROUND]["signature"],
    )
    assert draw.status == Draw.Status.COMPLETED
    assert draw.entropy_source == "drand"
    assert draw.conducted_by == staff
