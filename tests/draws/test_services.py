"""Closing, freezing, cancelling and drawing through the services, on PostgreSQL and Redis."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from core.models import OutboxEvent
from draws import verify
from draws.leaves import PackedLeaves
from draws.models import Draw, FrozenTicketList
from draws.services.freezing import holder_for
from draws.services.passes import run_due
from draws.services.running import conduct_draw
from lottery.models import House
from lottery.services import change_house_status
from payments.models import Refund
from purchases.models import Ticket
from purchases.services.checkout import start_checkout
from purchases.services.refunds import refund_purchase, retry_due_refunds
from reservations.models import Reservation
from reservations.services import reserve_tickets
from reservations.services.lifecycle import expire_due_reservations
from tests.draws.flow import ENTROPY, activated_house, buy, end_sales, live_draw
from tests.factories import create_house

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_activation_commits_to_a_seed_once_and_a_pause_keeps_it(db) -> None:
    house = activated_house()
    seed = bytes(house.draw_seed)
    assert len(seed) == 32
    assert house.draw_commitment == hashlib.sha256(seed).hexdigest()
    change_house_status(house_id=house.pk, to_status=House.Status.PAUSED)
    house = change_house_status(house_id=house.pk, to_status=House.Status.ACTIVE)
    assert bytes(house.draw_seed) == seed
    assert house.draw_commitment == hashlib.sha256(seed).hexdigest()
    assert seed.hex() not in repr(house) and seed.hex() not in str(house)


def test_due_house_closes_freezes_and_reveals_its_seed(make_player) -> None:
    house = activated_house(total_tickets=20)
    alice, bob = make_player(), make_player()
    buy(alice, house, 3)
    buy(bob, house, 2)
    end_sales(house)

    summary = run_due()

    house.refresh_from_db()
    draw = live_draw(house)
    assert summary["closed"] == 1
    assert house.status == House.Status.CLOSED
    assert draw.status == Draw.Status.WAITING_ENTROPY
    assert draw.seed == bytes(house.draw_seed).hex()
    assert draw.commitment == house.draw_commitment
    assert draw.tickets_count == 5
    assert draw.alternates_count == 3
    leaves = PackedLeaves(bytes(draw.ticket_list.leaves))
    numbers = [leaves.ticket_number(i) for i in range(len(leaves))]
    assert numbers == sorted(
        Ticket.objects.filter(house=house).values_list("ticket_number", flat=True)
    )
    holders = {leaves.holder(i) for i in range(len(leaves))}
    assert holders == {holder_for(house_id=house.pk, user_id=u.pk) for u in (alice, bob)}
    assert draw.tickets_root == verify.merkle_root(leaves).hex()
    closed_at = int(draw.closed_at.timestamp())
    assert draw.beacon_round == verify.round_at_or_after(closed_at + 300)
    assert draw.beacon_chain == verify.QUICKNET.hash
    assert OutboxEvent.objects.filter(event_type="draw.frozen").count() == 1
    assert run_due()["freeze"] == {}  # nothing left to do: frozen once


def test_sold_out_house_closes_before_its_end_date(make_player) -> None:
    house = activated_house(total_tickets=4)
    buy(make_player(), house, 4)
    run_due()
    house.refresh_from_db()
    assert house.status == House.Status.CLOSED
    assert live_draw(house).status == Draw.Status.WAITING_ENTROPY


def test_a_house_still_selling_is_left_alone(make_player) -> None:
    house = activated_house()
    buy(make_player(), house, 2)
    run_due()
    house.refresh_from_db()
    assert house.status == House.Status.ACTIVE
    assert not Draw.objects.exists()


def test_staff_closed_house_is_scheduled_and_frozen(make_player) -> None:
    house = activated_house()
    buy(make_player(), house, 2)
    change_house_status(house_id=house.pk, to_status=House.Status.CLOSED)
    summary = run_due()
    assert summary["scheduled"] == 1
    assert live_draw(house).status == Draw.Status.WAITING_ENTROPY


def test_freeze_waits_for_a_pending_reservation_to_expire(make_player, settings) -> None:
    settings.DRAW_FREEZE_WAIT_SECONDS = 3600
    house = activated_house()
    buy(make_player(), house, 2)
    reserve_tickets(player=make_player(), house_id=house.pk, quantity=1, idempotency_key="k-1")
    end_sales(house)
    run_due()
    draw = live_draw(house)
    assert draw.status == Draw.Status.SCHEDULED  # a purchase is still in flight
    Reservation.objects.filter(status=Reservation.Status.PENDING).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    expire_due_reservations()
    run_due()
    draw.refresh_from_db()
    assert draw.status == Draw.Status.WAITING_ENTROPY
    assert draw.tickets_count == 2


def test_processing_checkout_past_the_bound_is_settled_by_recovery_then_frozen(
    make_player, settings
) -> None:
    settings.DRAW_FREEZE_WAIT_SECONDS = 0
    settings.CHECKOUT_STUCK_AFTER = timedelta(0)
    house = activated_house()
    buy(make_player(), house, 2)
    buyer = make_player()
    outcome = reserve_tickets(player=buyer, house_id=house.pk, quantity=1, idempotency_key="k-2")
    celery_app.conf.task_always_eager = False  # the checkout task is queued, never run
    try:
        start_checkout(player=buyer, reservation_id=outcome.data()["id"], payment_token="tok_ok")
    finally:
        celery_app.conf.task_always_eager = True
    end_sales(house)

    assert run_due()["freeze"] == {"waiting_past_bound": 1}  # recovery settles it meanwhile
    run_due()

    assert Reservation.objects.get(pk=outcome.data()["id"]).status == Reservation.Status.FAILED
    draw = live_draw(house)
    assert draw.status == Draw.Status.WAITING_ENTROPY
    assert draw.tickets_count == 2


def test_manual_conduct_picks_the_winner_from_stored_inputs_and_marks_the_house_drawn(
    make_player, staff
) -> None:
    house = activated_house(total_tickets=50)
    for _ in range(4):
        buy(make_player(), house, 3)
    end_sales(house)
    run_due()
    draw = live_draw(house)

    done = conduct_draw(draw_id=draw.pk, actor=staff, entropy=ENTROPY, source="dice, video #12")

    material = verify.draw_material(
        randomness_hex=ENTROPY,
        house_id=house.pk,
        seed_hex=draw.seed,
        tickets_count=draw.tickets_count,
        tickets_root_hex=draw.tickets_root,
    )
    leaves = PackedLeaves(bytes(draw.ticket_list.leaves))
    indices = verify.pick_indices(material, 12, 3)
    assert done.status == Draw.Status.COMPLETED
    assert done.winning_index == indices[0]
    assert done.winning_ticket_number == leaves.ticket_number(indices[0])
    assert done.awarded_ticket_number == done.winning_ticket_number
    assert done.alternates == [leaves.ticket_number(i) for i in indices[1:]]
    assert (done.entropy_source, done.beacon_randomness, done.beacon_signature) == (
        "manual",
        ENTROPY,
        "",
    )
    assert done.entropy_note == "dice, video #12"
    assert done.conducted_by == staff
    house.refresh_from_db()
    assert house.status == House.Status.DRAWN
    event = OutboxEvent.objects.get(event_type="draw.completed")
    assert event.payload["winning_ticket_number"] == done.winning_ticket_number


def test_manual_mode_never_runs_a_draw_by_itself(make_player, settings) -> None:
    settings.DRAW_ENTROPY_SOURCE = "manual"
    house = activated_house()
    buy(make_player(), house, 2)
    end_sales(house)
    future = timezone.now() + timedelta(days=1)
    run_due(now=future)
    assert run_due(now=future)["run"] == {}
    assert live_draw(house).status == Draw.Status.WAITING_ENTROPY


def test_under_subscribed_house_is_cancelled_and_every_purchase_refunded(make_player) -> None:
    house = activated_house(total_tickets=100, min_participation_percent=10)
    purchases = [buy(make_player(), house, 3), buy(make_player(), house, 2)]
    end_sales(house)

    run_due()

    house.refresh_from_db()
    assert house.status == House.Status.CANCELLED
    assert not Draw.objects.filter(house=house).exists()  # a cancelled house has no draw
    assert OutboxEvent.objects.filter(event_type="lottery.cancelled").count() == 1
    for purchase in purchases:
        purchase.refresh_from_db()
        assert purchase.status == Reservation.Status.REFUNDED
    assert set(Refund.objects.values_list("status", flat=True)) == {Refund.Status.SUCCEEDED}
    assert not Ticket.objects.filter(house=house, status=Ticket.Status.ACTIVE).exists()
    house.refresh_from_db()
    assert house.tickets_sold == 0


def test_refund_failing_during_a_cancellation_is_retried_until_refunded(
    make_player, settings
) -> None:
    settings.SANDBOX_REFUND_FAILURES = 2
    house = activated_house(total_tickets=100, min_participation_percent=50)
    failing = buy(make_player(), house, 2, token="tok_refund_fails")
    fine = buy(make_player(), house, 1)
    end_sales(house)

    run_due()

    house.refresh_from_db()
    assert house.status == House.Status.CANCELLED
    refund = Refund.objects.get(payment__reservation=failing)
    assert refund.status == Refund.Status.FAILED  # the gateway said no, once
    fine.refresh_from_db()
    assert fine.status == Reservation.Status.REFUNDED
    for _ in range(2):
        Refund.objects.filter(pk=refund.pk).update(next_attempt_at=timezone.now())
        retry_due_refunds()
        run_due()  # the pass never opens a second refund for the same purchase
    refund.refresh_from_db()
    failing.refresh_from_db()
    house.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert failing.status == Reservation.Status.REFUNDED
    assert house.status == House.Status.CANCELLED
    assert Refund.objects.count() == 2
    assert house.tickets_sold == 0


def test_a_crash_between_cancelling_and_refunding_loses_no_refund(make_player) -> None:
    house = activated_house(total_tickets=100, min_participation_percent=50)
    purchase = buy(make_player(), house, 2)
    # As if the process died right after the cancellation committed.
    change_house_status(house_id=house.pk, to_status=House.Status.CANCELLED)
    assert not Refund.objects.exists()
    assert run_due()["refunds_opened"] == 1
    purchase.refresh_from_db()
    assert purchase.status == Reservation.Status.REFUNDED


def test_house_without_commitment_is_flagged_and_never_drawn(make_player) -> None:
    house = create_house()  # active without going through activation: no seed
    buy(make_player(), house, 3)
    end_sales(house)

    run_due()
    run_due()

    draw = live_draw(house)
    assert draw.status == Draw.Status.SCHEDULED
    assert draw.needs_attention_at is not None
    assert draw.seed == "" and draw.ticket_list_id is None
    assert "no_commitment" in draw.last_error
    assert OutboxEvent.objects.filter(event_type="draw.needs_attention").count() == 1
    house.refresh_from_db()
    assert house.status == House.Status.CLOSED
    assert house.draw_seed is None  # never a fresh seed


def test_a_refund_after_close_leaves_the_frozen_list_unchanged(make_player) -> None:
    house = activated_house()
    first = buy(make_player(), house, 2)
    buy(make_player(), house, 1)
    end_sales(house)
    run_due()
    frozen = FrozenTicketList.objects.get(house=house)
    before = bytes(frozen.leaves)
    refund_purchase(reservation=first.pk, reason="staff")
    first.refresh_from_db()
    assert first.status == Reservation.Status.REFUNDED
    frozen.refresh_from_db()
    assert bytes(frozen.leaves) == before
    assert frozen.tickets_count == 3


def test_staff_cancel_a_flagged_lottery_and_every_purchase_is_refunded(
    make_player, staff, staff_client
) -> None:
    house = create_house()  # no commitment: flagged at close
    purchase = buy(make_player(), house, 2)
    end_sales(house)
    run_due()
    draw = live_draw(house)
    assert draw.needs_attention_at is not None

    answer = staff_client.post(
        f"/admin/draws/draw/{draw.pk}/cancel-lottery/", {"reason": "no commitment"}
    )

    assert answer.status_code == 302
    house.refresh_from_db()
    purchase.refresh_from_db()
    assert house.status == House.Status.CANCELLED
    assert not Draw.objects.filter(house=house).exists()
    assert purchase.status == Reservation.Status.REFUNDED
    cancelled = OutboxEvent.objects.get(event_type="lottery.cancelled")
    assert cancelled.payload["cancelled_by"] == staff.pk


def test_a_frozen_lottery_cannot_be_cancelled_by_staff(make_player, staff) -> None:
    from core import exceptions as domain
    from draws.services.cancelling import cancel_lottery_by_staff

    house = activated_house()
    buy(make_player(), house, 2)
    end_sales(house)
    run_due()
    with pytest.raises(domain.InvalidState):
        cancel_lottery_by_staff(house_id=house.pk, actor=staff, reason="changed our mind")
