"""Real threads, real PostgreSQL, a barrier start: the database never lets the race win.

Each race has a negative control: the same race against a deliberately naive
read-then-write, which does break the invariant, proving the harness can see it.
"""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from core import exceptions as domain
from lottery.models import House, HouseParticipant, Promotion, PromotionRedemption
from purchases.selectors import integrity_mismatches
from reservations.models import Reservation
from reservations.services import expire_due_reservations, reserve_tickets
from tests.reservations.conftest import race, synced

RACERS = 50
race_db = pytest.mark.django_db(transaction=True)


def _reserved_in_rows(house: House) -> int:
    return (
        Reservation.objects.filter(house=house, status__in=Reservation.HOLDING_RESERVED).aggregate(
            n=Sum("quantity")
        )["n"]
        or 0
    )


def naive_reserve(*, player, house_id: int, quantity: int) -> None:
    """Read, decide in Python, write absolute values: what the services must never do."""
    house = House.objects.get(pk=house_id)
    if house.tickets_available < quantity:
        raise domain.SoldOut()
    with transaction.atomic():
        House.objects.filter(pk=house_id).update(tickets_reserved=house.tickets_reserved + quantity)
        Reservation.objects.create(
            house=house,
            user=player,
            quantity=quantity,
            unit_price=house.ticket_price,
            total_price=house.ticket_price * quantity,
            currency=house.currency,
            expires_at=timezone.now() + timedelta(minutes=10),
        )


def _players(make_player, n: int) -> list:
    return [make_player() for _ in range(n)]


@race_db
@pytest.mark.parametrize("with_redis", [False, True], ids=["database-only", "redis-in-front"])
def test_fifty_racers_for_the_last_five_tickets_never_oversell(make_player, make_house, with_redis):
    house = make_house(total_tickets=105, max_tickets_per_purchase=2)
    House.objects.filter(pk=house.pk).update(tickets_sold=100)  # 5 left
    if with_redis:
        synced()
    players = _players(make_player, RACERS)

    results = race(
        RACERS, lambda i: reserve_tickets(player=players[i], house_id=house.pk, quantity=1)
    )

    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 5
    assert all(isinstance(e, domain.SoldOut) for e in losers), losers
    house.refresh_from_db()
    assert house.tickets_sold + house.tickets_reserved == house.total_tickets
    assert _reserved_in_rows(house) == 5
    # sold=100 was set by hand with no tickets: exclude that counter, check everything else.
    assert [m for m in integrity_mismatches() if m.counter != "tickets_sold"] == []


@race_db
def test_racers_for_the_last_tickets_leave_check_integrity_clean(make_player, make_house):
    house = make_house(total_tickets=7, max_tickets_per_purchase=3)
    synced()
    players = _players(make_player, RACERS)
    results = race(
        RACERS, lambda i: reserve_tickets(player=players[i], house_id=house.pk, quantity=1 + i % 2)
    )
    house.refresh_from_db()
    assert _reserved_in_rows(house) == house.tickets_reserved <= 7
    assert house.tickets_reserved >= 6  # someone must get the last one or two
    assert all(isinstance(r, domain.SoldOut) for r in results if isinstance(r, Exception))
    call_command("check_integrity")  # raises CommandError on any mismatch


@race_db
def test_negative_control_naive_read_then_write_oversells(make_player, make_house):
    house = make_house(total_tickets=5)
    players = _players(make_player, RACERS)
    race(RACERS, lambda i: naive_reserve(player=players[i], house_id=house.pk, quantity=1))
    assert _reserved_in_rows(house) > house.total_tickets  # the harness sees an oversell
    assert integrity_mismatches()


@race_db
def test_racers_past_the_participant_cap_never_exceed_it(make_player, make_house):
    house = make_house(total_tickets=1000, participant_cap=10)
    players = _players(make_player, RACERS)
    results = race(
        RACERS, lambda i: reserve_tickets(player=players[i], house_id=house.pk, quantity=1)
    )
    house.refresh_from_db()
    assert house.participants_count == 10
    assert HouseParticipant.objects.filter(house=house).count() == 10
    assert Reservation.objects.filter(house=house).values("user").distinct().count() == 10
    assert sum(isinstance(r, domain.ParticipantCapReached) for r in results) == RACERS - 10
    assert integrity_mismatches() == []


def naive_join(*, player, house_id: int) -> None:
    house = House.objects.get(pk=house_id)
    if house.participants_count >= house.participant_cap:
        raise domain.ParticipantCapReached()
    with transaction.atomic():
        House.objects.filter(pk=house_id).update(participants_count=house.participants_count + 1)
        HouseParticipant.objects.create(house=house, user=player, tickets_held=1)


@race_db
def test_negative_control_naive_cap_check_lets_too_many_in(make_player, make_house):
    house = make_house(participant_cap=10)
    players = _players(make_player, RACERS)
    race(RACERS, lambda i: naive_join(player=players[i], house_id=house.pk))
    assert HouseParticipant.objects.filter(house=house).count() > 10


@race_db
def test_same_player_racing_themselves_respects_their_allowance(make_player, make_house):
    house = make_house(max_tickets_per_user=4, participant_cap=1)
    player = make_player()
    results = race(20, lambda i: reserve_tickets(player=player, house_id=house.pk, quantity=1))
    assert sum(not isinstance(r, Exception) for r in results) == 4
    assert all(
        isinstance(r, domain.PurchaseLimitExceeded) for r in results if isinstance(r, Exception)
    )
    house.refresh_from_db()
    assert (house.tickets_reserved, house.participants_count) == (4, 1)
    assert integrity_mismatches() == []


@race_db
def test_promotion_with_max_redemptions_is_redeemed_exactly_k_times(
    make_player, make_house, make_promotion
):
    house = make_house(total_tickets=1000)
    promotion = make_promotion(max_redemptions=7)
    players = _players(make_player, RACERS)
    results = race(
        RACERS,
        lambda i: reserve_tickets(
            player=players[i], house_id=house.pk, quantity=1, promo_code=promotion.code
        ),
    )
    promotion.refresh_from_db()
    assert promotion.times_redeemed == 7
    assert PromotionRedemption.objects.filter(promotion=promotion).count() == 7
    assert sum(not isinstance(r, Exception) for r in results) == 7
    assert all(isinstance(r, domain.PromotionInvalid) for r in results if isinstance(r, Exception))
    assert integrity_mismatches() == []


@race_db
def test_per_user_promotion_limit_holds_when_a_player_races_themselves(
    make_player, make_house, make_promotion
):
    house = make_house(total_tickets=1000)
    promotion = make_promotion(per_user_limit=2)
    player = make_player()
    race(
        20,
        lambda i: reserve_tickets(
            player=player, house_id=house.pk, quantity=1, promo_code=promotion.code
        ),
    )
    assert PromotionRedemption.objects.filter(promotion=promotion, user=player).count() == 2


def naive_redeem(*, promotion_id: int) -> None:
    promotion = Promotion.objects.get(pk=promotion_id)
    if promotion.times_redeemed >= promotion.max_redemptions:
        raise domain.PromotionInvalid()
    Promotion.objects.filter(pk=promotion_id).update(times_redeemed=promotion.times_redeemed + 1)
    return True


@race_db
def test_negative_control_naive_redemption_count_over_redeems(make_promotion):
    promotion = make_promotion(max_redemptions=7)
    results = race(RACERS, lambda i: naive_redeem(promotion_id=promotion.pk))
    assert sum(r is True for r in results) > 7  # more uses granted than the limit


@race_db
def test_two_expiry_sweeps_at_once_release_each_reservation_once(make_player, make_house):
    house = make_house(total_tickets=500, max_tickets_per_purchase=5)
    players = _players(make_player, 40)
    for index, player in enumerate(players):
        reserve_tickets(player=player, house_id=house.pk, quantity=1 + index % 3)
    keep = reserve_tickets(player=players[0], house_id=house.pk, quantity=5).data()["id"]
    Reservation.objects.exclude(pk=keep).update(expires_at=timezone.now() - timedelta(seconds=1))
    due = Reservation.objects.exclude(pk=keep).count()

    counts = race(2, lambda i: expire_due_reservations(batch_size=7))

    assert sum(counts) == due
    house.refresh_from_db()
    assert house.tickets_reserved == 5 and house.participants_count == 1
    assert Reservation.objects.filter(status="expired").count() == due
    assert integrity_mismatches() == []


def naive_sweep() -> int:
    """Read due rows without locks, release unconditionally: double-releases under a race."""
    due = list(Reservation.objects.filter(status="pending", expires_at__lte=timezone.now()))
    for reservation in due:
        Reservation.objects.filter(pk=reservation.pk).update(status="expired")
        House.objects.filter(pk=reservation.house_id).update(
            tickets_reserved=F("tickets_reserved") - reservation.quantity
        )
    return len(due)


@race_db
def test_negative_control_naive_sweeps_release_twice(make_player, make_house):
    house = make_house(total_tickets=500, max_tickets_per_purchase=50)
    players = _players(make_player, 20)
    for player in players:
        reserve_tickets(player=player, house_id=house.pk, quantity=1)
    # Not due: a cushion so a double release stays above zero and the CHECK cannot stop it.
    reserve_tickets(player=players[0], house_id=house.pk, quantity=40)
    Reservation.objects.filter(quantity=1).update(expires_at=timezone.now() - timedelta(seconds=1))

    counts = race(2, lambda i: naive_sweep())

    house.refresh_from_db()
    assert sum(counts) > 20  # the same reservations were released by both sweeps
    assert house.tickets_reserved < 40
    assert integrity_mismatches()
