"""expire_reservations, sync_inventory, check_integrity: as commands and as beat tasks."""

from datetime import timedelta

import pytest
import redis as redis_lib
from django.conf import settings
from django.core.management import CommandError, call_command, execute_from_command_line
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.beat import BEAT_SCHEDULE
from lottery.models import House, HouseParticipant, PromotionRedemption
from purchases.selectors import integrity_mismatches
from reservations import inventory, tasks
from reservations.models import Reservation
from reservations.services import expire_due_reservations, reserve_tickets, sync_inventory


def _redis_available(house_id: int) -> int:
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        return int(client.hget(inventory.house_key(house_id), "available"))
    finally:
        client.close()


def _make_due(*reservation_ids: str) -> None:
    Reservation.objects.filter(pk__in=reservation_ids).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_expiry_releases_counters_participant_promotion_and_redis(
    player, make_player, make_house, make_promotion, django_capture_on_commit_callbacks
) -> None:
    house = make_house(total_tickets=10)
    promotion = make_promotion(max_redemptions=5)
    sync_inventory()
    due = reserve_tickets(player=player, house_id=house.pk, quantity=3, promo_code=promotion.code)
    kept = reserve_tickets(player=make_player(), house_id=house.pk, quantity=2)
    _make_due(due.data()["id"])
    assert _redis_available(house.pk) == 5

    with django_capture_on_commit_callbacks(execute=True):
        assert expire_due_reservations() == 1

    house.refresh_from_db()
    assert (house.tickets_reserved, house.participants_count) == (2, 1)
    assert not HouseParticipant.objects.filter(house=house, user=player).exists()
    assert Reservation.objects.get(pk=due.data()["id"]).status == "expired"
    assert Reservation.objects.get(pk=kept.data()["id"]).status == "pending"
    promotion.refresh_from_db()
    assert promotion.times_redeemed == 0 and not PromotionRedemption.objects.exists()
    assert _redis_available(house.pk) == 8
    assert integrity_mismatches() == []


def test_participant_with_another_live_reservation_stays(player, make_house) -> None:
    house = make_house()
    first = reserve_tickets(player=player, house_id=house.pk, quantity=1)
    reserve_tickets(player=player, house_id=house.pk, quantity=2)
    _make_due(first.data()["id"])
    expire_due_reservations()
    assert HouseParticipant.objects.get(house=house, user=player).tickets_held == 2
    house.refresh_from_db()
    assert house.participants_count == 1


def test_expiry_run_twice_changes_nothing_the_second_time(player, make_house) -> None:
    house = make_house()
    _make_due(reserve_tickets(player=player, house_id=house.pk, quantity=2).data()["id"])
    assert expire_due_reservations() == 1
    assert expire_due_reservations() == 0
    house.refresh_from_db()
    assert house.tickets_reserved == 0


def test_expire_reservations_command_and_task(player, make_house, capsys) -> None:
    house = make_house()
    _make_due(reserve_tickets(player=player, house_id=house.pk, quantity=1).data()["id"])
    call_command("expire_reservations")
    assert "expired 1 reservations" in capsys.readouterr().out
    _make_due(reserve_tickets(player=player, house_id=house.pk, quantity=1).data()["id"])
    assert tasks.expire_reservations.delay().get() == 1


def test_sync_inventory_rebuilds_active_houses_and_never_writes_the_database(
    player, make_house, capsys
) -> None:
    house = make_house(total_tickets=10)
    draft = make_house(status=House.Status.DRAFT)
    reserve_tickets(player=player, house_id=house.pk, quantity=4)
    with CaptureQueriesContext(connection) as queries:
        call_command("sync_inventory")
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert f"house {house.pk}: redis missing -> 6" in capsys.readouterr().out
    assert _redis_available(house.pk) == 6
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    assert not client.exists(inventory.house_key(draft.pk))
    assert client.smembers(inventory.participants_key(house.pk)) == {str(player.pk).encode()}
    client.close()


def test_sync_counts_processing_as_reserved(player, make_house) -> None:
    house = make_house(total_tickets=10)
    body = reserve_tickets(player=player, house_id=house.pk, quantity=3).data()
    Reservation.objects.filter(pk=body["id"]).update(status="processing")
    sync_inventory()
    assert _redis_available(house.pk) == 7


def test_only_one_sync_runs_at_a_time(make_house) -> None:
    make_house()
    lock = inventory.sync_lock()
    assert lock.acquire(blocking=False)
    try:
        assert sync_inventory() is None
    finally:
        lock.release()
    assert sync_inventory() is not None


def test_check_integrity_passes_on_consistent_counters(player, make_house, capsys) -> None:
    house = make_house()
    reserve_tickets(player=player, house_id=house.pk, quantity=2)
    call_command("check_integrity")
    assert "integrity ok" in capsys.readouterr().out


@pytest.mark.parametrize(
    "corruption",
    [
        {"tickets_reserved": 1},
        {"participants_count": 0},
        {"tickets_sold": 3},
    ],
)
def test_check_integrity_fails_and_names_the_house(player, make_house, corruption) -> None:
    house = make_house(title="Broken barn")
    make_house(title="Fine flat")
    reserve_tickets(player=player, house_id=house.pk, quantity=2)
    House.objects.filter(pk=house.pk).update(**corruption)
    with pytest.raises(CommandError, match=rf"house\(s\) \[{house.pk}\]"):
        call_command("check_integrity")
    names = [str(m) for m in integrity_mismatches()]
    assert names and all("Broken barn" in n for n in names)


def test_check_integrity_exits_non_zero(player, make_house, capsys) -> None:
    house = make_house()
    House.objects.filter(pk=house.pk).update(tickets_reserved=5)
    # As from a shell: CommandError becomes exit status 1 with the message on stderr.
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "check_integrity", "--skip-checks"])
    assert exit_info.value.code == 1
    assert f"house {house.pk}" in capsys.readouterr().err


def test_beat_runs_expiry_every_30_seconds_and_sync_every_5_minutes() -> None:
    jobs = {job.task: job.every_seconds for job in BEAT_SCHEDULE}
    assert jobs["reservations.expire_reservations"] == 30
    assert jobs["reservations.sync_inventory"] == 300


def test_expiry_locks_a_house_once_per_batch_not_once_per_reservation(
    make_player, make_house
) -> None:
    house = make_house(total_tickets=100)
    due = [
        reserve_tickets(player=make_player(), house_id=house.pk, quantity=1).data()["id"]
        for _ in range(12)
    ]
    _make_due(*due)
    with CaptureQueriesContext(connection) as queries:
        assert expire_due_reservations() == 12
    house_locks = [
        q["sql"] for q in queries if 'FROM "lottery_house"' in q["sql"] and "FOR" in q["sql"]
    ]
    assert len(house_locks) == 1, house_locks


def test_one_inconsistent_house_does_not_stop_expiry_elsewhere(make_player, make_house) -> None:
    broken, healthy = make_house(total_tickets=10), make_house(total_tickets=10)
    on_broken = reserve_tickets(player=make_player(), house_id=broken.pk, quantity=2)
    on_healthy = reserve_tickets(player=make_player(), house_id=healthy.pk, quantity=2)
    _make_due(on_broken.data()["id"], on_healthy.data()["id"])
    # Corrupt the broken house's participant row so releasing it must refuse.
    HouseParticipant.objects.filter(house=broken).update(tickets_held=1)

    assert expire_due_reservations() == 1
    assert Reservation.objects.get(pk=on_healthy.data()["id"]).status == "expired"
    assert Reservation.objects.get(pk=on_broken.data()["id"]).status == "pending"
    healthy.refresh_from_db()
    assert healthy.tickets_reserved == 0
