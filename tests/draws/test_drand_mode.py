"""drand mode: the runner fetches the round fixed at close from a relay (a local one here)."""

from datetime import timedelta

import pytest

from core.models import OutboxEvent
from draws import verify
from draws.models import Draw
from draws.services.passes import run_due
from lottery.models import House
from tests.draws.drand_server import CLOSE_AT, closed_at_the_recorded_round, drand_mode
from tests.draws.flow import live_draw
from tests.draws.quicknet_rounds import QUICKNET_ROUNDS, RECORDED_ROUND

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def relay(settings):
    with drand_mode(settings) as relay:
        yield relay


@pytest.fixture
def buyers(make_player):
    return [make_player() for _ in range(3)]


def test_runner_fetches_the_fixed_round_and_completes_the_draw(relay, buyers) -> None:
    house = closed_at_the_recorded_round(buyers)
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


def test_a_round_not_yet_out_is_not_fetched(relay, buyers) -> None:
    house = closed_at_the_recorded_round(buyers)
    assert run_due(now=CLOSE_AT + timedelta(seconds=10))["run"] == {"round_not_due": 1}
    assert relay.requests == []
    assert live_draw(house).status == Draw.Status.WAITING_ENTROPY


def test_relay_without_the_round_fails_the_attempt_and_the_next_pass_completes(
    relay, buyers
) -> None:
    house = closed_at_the_recorded_round(buyers)
    assert run_due()["run"] == {"failed": 1}
    draw = live_draw(house)
    assert draw.status == Draw.Status.FAILED
    assert "BeaconUnavailable" in draw.last_error
    relay.rounds[RECORDED_ROUND] = QUICKNET_ROUNDS[RECORDED_ROUND]
    assert run_due()["run"] == {"completed": 1}
    draw.refresh_from_db()
    assert (draw.status, draw.attempts) == (Draw.Status.COMPLETED, 2)


def test_another_rounds_signature_from_a_relay_is_refused(relay, buyers) -> None:
    house = closed_at_the_recorded_round(buyers)
    relay.rounds[RECORDED_ROUND] = QUICKNET_ROUNDS[3]  # a real signature, of another round
    assert run_due()["run"] == {"failed": 1}
    draw = live_draw(house)
    assert draw.status == Draw.Status.FAILED
    assert "BeaconInvalid" in draw.last_error
    assert draw.beacon_randomness == ""


def test_staff_paste_the_fixed_rounds_signature_when_no_relay_answers(relay, buyers, staff) -> None:
    from draws.services.running import conduct_draw

    house = closed_at_the_recorded_round(buyers)
    draw = conduct_draw(
        draw_id=live_draw(house).pk,
        actor=staff,
        beacon_round=RECORDED_ROUND,
        beacon_signature=QUICKNET_ROUNDS[RECORDED_ROUND]["signature"],
    )
    assert draw.status == Draw.Status.COMPLETED
    assert draw.entropy_source == "drand"
    assert draw.conducted_by == staff
