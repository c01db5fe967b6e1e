"""Two passes at once draw once; a pass killed after computing and before saving, rerun,
draws the same winner: every input is stored before the result is computed."""

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

from core import failpoints
from core.models import OutboxEvent
from draws import verify
from draws.leaves import PackedLeaves
from draws.models import Draw, FrozenTicketList
from draws.services.passes import run_due
from draws.services.running import conduct_draw
from lottery.models import House
from tests.draws.drand_server import (
    CLOSE_AT,
    closed_at_the_recorded_round,
    drand_mode,
    sold_house_with_sales_ending_before,
)
from tests.draws.flow import ENTROPY, activated_house, buy, end_sales, live_draw
from tests.draws.quicknet_rounds import QUICKNET_ROUNDS, RECORDED_ROUND

pytestmark = [pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
RANDOMNESS = QUICKNET_ROUNDS[RECORDED_ROUND]["randomness"]


@pytest.fixture
def relay(settings):
    with drand_mode(settings) as relay:
        yield relay


@pytest.fixture
def buyers(make_player):
    return [make_player() for _ in range(3)]


def at_once(*jobs: Callable[[], object]) -> list[BaseException]:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            job()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def expected_winner(draw: Draw, randomness: str) -> int:
    material = verify.draw_material(
        randomness_hex=randomness,
        house_id=draw.house_id,
        seed_hex=draw.seed,
        tickets_count=draw.tickets_count,
        tickets_root_hex=draw.tickets_root,
    )
    [index, *_] = verify.pick_indices(material, draw.tickets_count, draw.alternates_count)
    return PackedLeaves(bytes(draw.ticket_list.leaves)).ticket_number(index)


def run_draws_process(relay_url: str) -> subprocess.Popen:
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "DRAW_ENTROPY_SOURCE": "drand",
        "DRAW_BEACON_URLS": relay_url,
        "DRAW_BEACON_ATTEMPTS": "1",
        "FAILPOINTS_ENABLED": "1",
        "DEBUG": "1",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_draws"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_drawn_once(house: House) -> Draw:
    house.refresh_from_db()
    assert house.status == House.Status.DRAWN
    assert Draw.objects.filter(house=house).count() == 1
    assert FrozenTicketList.objects.filter(house=house).count() == 1
    assert OutboxEvent.objects.filter(event_type="draw.frozen").count() == 1
    assert OutboxEvent.objects.filter(event_type="draw.completed").count() == 1
    draw = live_draw(house)
    assert draw.status == Draw.Status.COMPLETED
    assert draw.winning_ticket_number == expected_winner(draw, RANDOMNESS)
    return draw


def test_two_passes_in_threads_close_freeze_and_draw_once(relay, buyers) -> None:
    house = sold_house_with_sales_ending_before(CLOSE_AT, buyers)
    relay.rounds[RECORDED_ROUND] = QUICKNET_ROUNDS[RECORDED_ROUND]

    assert at_once(lambda: run_due(now=CLOSE_AT), lambda: run_due(now=CLOSE_AT)) == []
    assert live_draw(house).status == Draw.Status.WAITING_ENTROPY
    assert at_once(run_due, run_due) == []

    assert_drawn_once(house)


def test_two_run_draws_processes_at_once_give_one_draw_and_one_winner(
    relay,
    buyers,
) -> None:
    house = closed_at_the_recorded_round(buyers)
    relay.rounds[RECORDED_ROUND] = QUICKNET_ROUNDS[RECORDED_ROUND]
    processes = [run_draws_process(relay.url) for _ in range(2)]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert_drawn_once(house)


def test_a_pass_killed_after_computing_and_before_saving_reruns_to_the_same_winner(
    relay,
    buyers,
    settings,
) -> None:
    house = closed_at_the_recorded_round(buyers)
    relay.rounds[RECORDED_ROUND] = QUICKNET_ROUNDS[RECORDED_ROUND]
    failpoints.arm("draw.before_save", action="crash")

    killed = run_draws_process(relay.url)
    killed.communicate(timeout=120)

    assert killed.returncode == -9  # SIGKILL at the failpoint, as if the machine died
    draw = live_draw(house)
    assert draw.status == Draw.Status.RUNNING  # claimed, never saved
    assert draw.winning_ticket_number is None
    rerun = run_draws_process(relay.url)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert assert_drawn_once(house).attempts == 2


def test_a_failed_conduct_is_recorded_and_the_retry_gives_the_same_winner(
    make_player, staff, settings
) -> None:
    settings.FAILPOINTS_ENABLED = True
    house = activated_house()
    buy(make_player(), house, 3)
    buy(make_player(), house, 2)
    end_sales(house)
    run_due()
    draw = live_draw(house)
    failpoints.arm("draw.before_save", action="raise")

    with pytest.raises(failpoints.InjectedFault):
        conduct_draw(draw_id=draw.pk, actor=staff, entropy=ENTROPY, source="dice")

    draw.refresh_from_db()
    assert draw.status == Draw.Status.FAILED
    assert "InjectedFault" in draw.last_error
    done = conduct_draw(draw_id=draw.pk, actor=staff, entropy=ENTROPY, source="dice")
    assert done.status == Draw.Status.COMPLETED
    assert done.winning_ticket_number == expected_winner(done, ENTROPY)
