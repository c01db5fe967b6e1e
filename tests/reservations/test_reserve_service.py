"""The reserve rules, in order, each refusal leaving nothing behind."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from core import exceptions as domain
from lottery.models import House, HouseParticipant, PlayerProfile, Promotion, PromotionRedemption
from purchases.selectors import integrity_mismatches
from reservations.models import Reservation
from reservations.services import cancel_reservation, reserve_tickets
from reservations.services.reserve_orm import reserve_with_orm


def _nothing_left_behind(house: House) -> None:
    house.refresh_from_db()
    assert (house.tickets_reserved, house.participants_count) == (0, 0)
    assert not Reservation.objects.filter(house=house).exists()
    assert not HouseParticipant.objects.filter(house=house).exists()
    assert not PromotionRedemption.objects.exists()
    assert integrity_mismatches() == []


def test_reserve_holds_tickets_and_counts_the_participant(player, make_house) -> None:
    house = make_house(total_tickets=10)
    outcome = reserve_tickets(player=player, house_id=house.pk, quantity=3)
    body = json.loads(outcome.body)
    assert outcome.status == 201
    assert body["status"] == "pending" and body["quantity"] == 3 and body["house_id"] == house.pk
    assert (body["unit_price"], body["discount"], body["total_price"]) == ("10.00", "0.00", "30.00")
    house.refresh_from_db()
    assert (house.tickets_reserved, house.participants_count) == (3, 1)
    assert HouseParticipant.objects.get(house=house, user=player).tickets_held == 3
    reservation = Reservation.objects.get(pk=body["id"])
    assert reservation.status == Reservation.Status.PENDING
    assert body["expires_at"] == reservation.expires_at.isoformat().replace("+00:00", "Z")
    assert integrity_mismatches() == []


@override_settings(RESERVATION_TTL=timedelta(seconds=90))
def test_reservation_expires_after_the_configured_ttl(player, make_house) -> None:
    house = make_house()
    before = timezone.now()
    body = reserve_tickets(player=player, house_id=house.pk, quantity=1).data()
    expires_at = Reservation.objects.get(pk=body["id"]).expires_at
    assert timedelta(seconds=89) < expires_at - before < timedelta(seconds=91)


def test_second_reservation_of_a_participant_does_not_count_them_twice(player, make_house) -> None:
    house = make_house()
    reserve_tickets(player=player, house_id=house.pk, quantity=2)
    reserve_tickets(player=player, house_id=house.pk, quantity=3)
    house.refresh_from_db()
    assert (house.tickets_reserved, house.participants_count) == (5, 1)
    assert HouseParticipant.objects.get(house=house, user=player).tickets_held == 5


@pytest.mark.parametrize(
    ("profile", "error"),
    [
        ({"is_verified": False}, domain.AccountNotVerified),
        ({"account_status": "suspended"}, domain.AccountSuspended),
        ({"account_status": "banned", "is_verified": False}, domain.AccountSuspended),
    ],
)
def test_ineligible_players_cannot_reserve(make_player, make_house, profile, error) -> None:
    house = make_house()
    player = make_player(**profile)
    with pytest.raises(error):
        reserve_tickets(player=player, house_id=house.pk, quantity=1)
    _nothing_left_behind(house)


def test_player_without_profile_counts_as_unverified(player, make_house) -> None:
    house = make_house()
    PlayerProfile.objects.filter(user=player).delete()
    with pytest.raises(domain.AccountNotVerified):
        reserve_tickets(player=player, house_id=house.pk, quantity=1)
    _nothing_left_behind(house)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"status": "draft"}, domain.NotFound),
        ({"deleted_at": timezone.now()}, domain.NotFound),
        ({"status": "paused"}, domain.SalesClosed),
        ({"status": "closed"}, domain.SalesClosed),
        (
            {
                "sales_start_at": timezone.now() + timedelta(hours=1),
                "sales_end_at": timezone.now() + timedelta(days=2),
            },
            domain.SalesClosed,
        ),
        (
            {
                "sales_start_at": timezone.now() - timedelta(days=2),
                "sales_end_at": timezone.now() - timedelta(seconds=1),
            },
            domain.SalesClosed,
        ),
    ],
)
def test_house_must_be_visible_active_and_on_sale(player, make_house, overrides, error) -> None:
    house = make_house(**overrides)
    with pytest.raises(error):
        reserve_tickets(player=player, house_id=house.pk, quantity=1)
    _nothing_left_behind(house)


def test_unknown_house_is_not_found(player, db) -> None:
    with pytest.raises(domain.NotFound):
        reserve_tickets(player=player, house_id=987654321, quantity=1)


@pytest.mark.parametrize("quantity", [1, 6])
def test_quantity_outside_per_purchase_bounds_is_refused(player, make_house, quantity) -> None:
    house = make_house(min_tickets_per_purchase=2, max_tickets_per_purchase=5)
    with pytest.raises(domain.PurchaseLimitExceeded):
        reserve_tickets(player=player, house_id=house.pk, quantity=quantity)
    _nothing_left_behind(house)


def test_per_user_allowance_counts_pending_processing_and_completed(player, make_house) -> None:
    house = make_house(max_tickets_per_user=5)
    reserve_tickets(player=player, house_id=house.pk, quantity=3)
    with pytest.raises(domain.PurchaseLimitExceeded):
        reserve_tickets(player=player, house_id=house.pk, quantity=3)
    reserve_tickets(player=player, house_id=house.pk, quantity=2)
    house.refresh_from_db()
    assert house.tickets_reserved == 5


def test_cancelled_tickets_return_to_the_allowance(player, make_house) -> None:
    house = make_house(max_tickets_per_user=3)
    first = reserve_tickets(player=player, house_id=house.pk, quantity=3).data()
    cancel_reservation(player=player, reservation_id=first["id"])
    reserve_tickets(player=player, house_id=house.pk, quantity=3)
    assert integrity_mismatches() == []


def test_sold_out_when_fewer_tickets_are_left_than_asked(player, make_player, make_house) -> None:
    house = make_house(total_tickets=5)
    reserve_tickets(player=make_player(), house_id=house.pk, quantity=4)
    with pytest.raises(domain.SoldOut):
        reserve_tickets(player=player, house_id=house.pk, quantity=2)
    reserve_tickets(player=player, house_id=house.pk, quantity=1)
    house.refresh_from_db()
    assert house.tickets_reserved == 5


def test_participant_cap_refuses_new_players_but_not_existing_ones(make_player, make_house) -> None:
    house = make_house(participant_cap=2)
    first, second, third = make_player(), make_player(), make_player()
    reserve_tickets(player=first, house_id=house.pk, quantity=1)
    reserve_tickets(player=second, house_id=house.pk, quantity=1)
    with pytest.raises(domain.ParticipantCapReached):
        reserve_tickets(player=third, house_id=house.pk, quantity=1)
    reserve_tickets(player=first, house_id=house.pk, quantity=1)
    house.refresh_from_db()
    assert (house.participants_count, house.tickets_reserved) == (2, 3)


def test_percent_promotion_discounts_and_is_counted(player, make_house, make_promotion) -> None:
    house = make_house(ticket_price=Decimal("9.99"))
    promotion = make_promotion(code="Spring25", discount_percent=Decimal("25.00"))
    body = reserve_tickets(
        player=player, house_id=house.pk, quantity=3, promo_code="spring25"
    ).data()
    # 29.97 * 25% = 7.4925 -> 7.49
    assert (body["discount"], body["total_price"]) == ("7.49", "22.48")
    promotion.refresh_from_db()
    assert promotion.times_redeemed == 1
    assert PromotionRedemption.objects.get().reservation_id is not None


def test_fixed_promotion_never_makes_the_total_negative(player, make_house, make_promotion) -> None:
    house = make_house(ticket_price=Decimal("5.00"))
    make_promotion(
        code="FIFTY", discount_percent=None, discount_amount=Decimal("50.00"), currency="EUR"
    )
    body = reserve_tickets(player=player, house_id=house.pk, quantity=2, promo_code="FIFTY").data()
    assert (body["discount"], body["total_price"]) == ("10.00", "0.00")


@pytest.mark.parametrize(
    "promotion_fields",
    [
        {"is_active": False},
        {
            "valid_from": timezone.now() + timedelta(hours=1),
            "valid_until": timezone.now() + timedelta(days=1),
        },
        {"max_redemptions": 1, "times_redeemed": 1},
        {"discount_percent": None, "discount_amount": Decimal("1.00"), "currency": "USD"},
    ],
)
def test_invalid_promotions_are_refused(
    player, make_house, make_promotion, promotion_fields
) -> None:
    house = make_house()
    promotion = make_promotion(**promotion_fields)
    with pytest.raises(domain.PromotionInvalid):
        reserve_tickets(player=player, house_id=house.pk, quantity=1, promo_code=promotion.code)
    house.refresh_from_db()
    assert house.tickets_reserved == 0 and not Reservation.objects.exists()


def test_promotion_for_another_house_is_refused(player, make_house, make_promotion) -> None:
    house, other = make_house(), make_house()
    promotion = make_promotion(house=other)
    with pytest.raises(domain.PromotionInvalid):
        reserve_tickets(player=player, house_id=house.pk, quantity=1, promo_code=promotion.code)


def test_unknown_promotion_code_is_refused(player, make_house) -> None:
    house = make_house()
    with pytest.raises(domain.PromotionInvalid):
        reserve_tickets(player=player, house_id=house.pk, quantity=1, promo_code="NOPE")


def test_per_user_promotion_limit(player, make_player, make_house, make_promotion) -> None:
    house = make_house()
    promotion = make_promotion(per_user_limit=1)
    first = reserve_tickets(player=player, house_id=house.pk, quantity=1, promo_code=promotion.code)
    with pytest.raises(domain.PromotionInvalid):
        reserve_tickets(player=player, house_id=house.pk, quantity=1, promo_code=promotion.code)
    reserve_tickets(player=make_player(), house_id=house.pk, quantity=1, promo_code=promotion.code)
    cancel_reservation(player=player, reservation_id=first.data()["id"])
    reserve_tickets(player=player, house_id=house.pk, quantity=1, promo_code=promotion.code)
    promotion.refresh_from_db()
    assert promotion.times_redeemed == 2


def test_same_key_and_body_replays_the_first_answer(player, make_house) -> None:
    house = make_house()
    first = reserve_tickets(
        player=player, house_id=house.pk, quantity=2, idempotency_key="k1", fingerprint="f"
    )
    again = reserve_tickets(
        player=player, house_id=house.pk, quantity=2, idempotency_key="k1", fingerprint="f"
    )
    assert again.replayed and again.body == first.body and again.status == 201
    assert Reservation.objects.count() == 1
    house.refresh_from_db()
    assert house.tickets_reserved == 2


def test_same_key_with_another_body_is_refused(player, make_house) -> None:
    house = make_house()
    reserve_tickets(
        player=player, house_id=house.pk, quantity=2, idempotency_key="k", fingerprint="a"
    )
    with pytest.raises(domain.IdempotencyKeyReused):
        reserve_tickets(
            player=player, house_id=house.pk, quantity=3, idempotency_key="k", fingerprint="b"
        )


def test_refusal_is_stored_and_replayed_under_its_key(player, make_house) -> None:
    house = make_house(total_tickets=1)
    with pytest.raises(domain.SalesClosed):
        House.objects.filter(pk=house.pk).update(status="paused")
        reserve_tickets(
            player=player, house_id=house.pk, quantity=1, idempotency_key="k", fingerprint="f"
        )
    House.objects.filter(pk=house.pk).update(status="active")
    replay = reserve_tickets(
        player=player, house_id=house.pk, quantity=1, idempotency_key="k", fingerprint="f"
    )
    assert replay.replayed and replay.status == 409
    assert json.loads(replay.body)["code"] == "sales_closed"


def test_orm_fallback_follows_the_same_rules(
    player, make_player, make_house, make_promotion
) -> None:
    """Embedded mode (SQLite) uses the ORM version; the answers must match the SQL one."""
    house = make_house(total_tickets=4, participant_cap=1, ticket_price=Decimal("9.99"))
    promotion = make_promotion(discount_percent=Decimal("25.00"))
    kwargs = {"idempotency_key": None, "fingerprint": ""}
    body = reserve_with_orm(
        player=player, house_id=house.pk, quantity=3, promo_code=promotion.code, **kwargs
    ).data()
    assert (body["discount"], body["total_price"]) == ("7.49", "22.48")
    with pytest.raises(domain.ParticipantCapReached):
        reserve_with_orm(
            player=make_player(), house_id=house.pk, quantity=1, promo_code=None, **kwargs
        )
    with pytest.raises(domain.SoldOut):
        reserve_with_orm(player=player, house_id=house.pk, quantity=2, promo_code=None, **kwargs)
    assert integrity_mismatches() == []
    promotion.refresh_from_db()
    assert promotion.times_redeemed == 1
    assert Promotion.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_keyed_reserve_survives_a_dead_database_connection(player, make_house) -> None:
    """The statement doubles as the connection health check: a dead one is replaced once."""
    from django.db import connection, connections

    house = make_house()
    reserve_tickets(player=player, house_id=house.pk, quantity=1, idempotency_key="a")
    backend_pid = connection.connection.info.backend_pid
    killer = connections.create_connection("default")
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    finally:
        killer.close()

    outcome = reserve_tickets(player=player, house_id=house.pk, quantity=1, idempotency_key="b")

    assert outcome.status == 201
    assert connection.connection.info.backend_pid != backend_pid
    assert Reservation.objects.filter(house=house).count() == 2
