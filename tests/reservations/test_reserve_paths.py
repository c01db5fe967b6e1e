"""The same reserve cases through both paths, the SQL statement and the ORM: the same answers.

``reserve_tickets`` takes the SQL path on PostgreSQL and the ORM path elsewhere
(embedded SQLite); both sit behind the Redis gate, which is left out here by
calling the two path functions directly, so the database rules answer every case.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from core import exceptions as domain
from core.errors import PROBLEM_CONTENT_TYPE
from core.idempotency import Outcome
from core.models import IdempotencyRecord
from lottery.models import House, HouseParticipant, PlayerProfile, Promotion, PromotionRedemption
from purchases.selectors import integrity_mismatches
from reservations.models import Reservation
from reservations.services.reserve import reserve_with_sql
from reservations.services.reserve_orm import api_datetime, reserve_with_orm

PATHS = {"sql": reserve_with_sql, "orm": reserve_with_orm}
BODY_FIELDS = {
    "id",
    "house_id",
    "quantity",
    "unit_price",
    "discount",
    "total_price",
    "currency",
    "status",
    "expires_at",
}

Reserve = Callable[..., Outcome]


@pytest.fixture(params=sorted(PATHS))
def reserve(request: pytest.FixtureRequest) -> Reserve:
    """``reserve(player, house_or_id, quantity, promo_code=, key=, fingerprint=)`` on one path."""
    if request.param == "sql" and connection.vendor != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    path = PATHS[request.param]

    def call(
        player: Any,
        house: House | int,
        quantity: int = 1,
        *,
        promo_code: str | None = None,
        key: str | None = None,
        fingerprint: str = "f",
    ) -> Outcome:
        return path(
            player=player,
            house_id=house if isinstance(house, int) else house.pk,
            quantity=quantity,
            promo_code=promo_code,
            idempotency_key=key,
            fingerprint=fingerprint if key else "",
        )

    return call


@dataclass
class World:
    player: Any
    make_player: Callable[..., Any]
    make_house: Callable[..., House]
    make_promotion: Callable[..., Promotion]
    reserve: Reserve


@pytest.fixture
def world(player, make_player, make_house, make_promotion, reserve) -> World:
    return World(player, make_player, make_house, make_promotion, reserve)


def _held(house_id: int) -> tuple[int, int, int, int]:
    """What a refusal must leave untouched: counters, rows and redemptions of the house."""
    house = House.objects.get(pk=house_id)
    return (
        house.tickets_reserved,
        house.participants_count,
        Reservation.objects.filter(house_id=house_id).count(),
        PromotionRedemption.objects.count(),
    )


def test_success_answers_the_reservation_and_holds_its_tickets(world: World) -> None:
    house = world.make_house(total_tickets=10, ticket_price=Decimal("9.99"))
    promotion = world.make_promotion(code="Spring25", discount_percent=Decimal("25.00"))

    outcome = world.reserve(world.player, house, 3, promo_code="spring25")

    assert (outcome.status, outcome.content_type, outcome.replayed) == (
        201,
        "application/json",
        False,
    )
    body = outcome.data()
    assert set(body) == BODY_FIELDS
    reservation = Reservation.objects.get(pk=body["id"])
    # 29.97 * 25% = 7.4925 -> 7.49
    assert body == {
        "id": str(reservation.pk),
        "house_id": house.pk,
        "quantity": 3,
        "unit_price": "9.99",
        "discount": "7.49",
        "total_price": "22.48",
        "currency": "EUR",
        "status": "pending",
        "expires_at": api_datetime(reservation.expires_at),
    }
    assert reservation.status == Reservation.Status.PENDING
    assert reservation.promotion_id == promotion.pk
    house.refresh_from_db()
    assert (house.tickets_reserved, house.participants_count) == (3, 1)
    assert HouseParticipant.objects.get(house=house, user=world.player).tickets_held == 3
    promotion.refresh_from_db()
    assert promotion.times_redeemed == 1
    assert PromotionRedemption.objects.get().reservation_id == reservation.pk
    assert integrity_mismatches() == []


def test_both_paths_render_the_same_body(player, make_house) -> None:
    """Byte order of the keys may differ (jsonb sorts them); the fields and values may not."""
    bodies = []
    for path in (reserve_with_sql, reserve_with_orm):
        house = make_house(ticket_price=Decimal("12.50"), title=path.__name__)
        body = path(
            player=player,
            house_id=house.pk,
            quantity=2,
            promo_code=None,
            idempotency_key=None,
            fingerprint="",
        ).data()
        bodies.append({k: v for k, v in body.items() if k not in ("id", "house_id", "expires_at")})
    assert bodies[0] == bodies[1]


def _sold_out(w: World) -> dict:
    return {"house": w.make_house(total_tickets=2), "quantity": 3}


def _sold_out_after_others(w: World) -> dict:
    house = w.make_house(total_tickets=5)
    w.reserve(w.make_player(), house, 4)
    return {"house": house, "quantity": 2}


def _participant_cap(w: World) -> dict:
    house = w.make_house(participant_cap=1)
    w.reserve(w.make_player(), house, 1)
    return {"house": house}


def _over_max_per_purchase(w: World) -> dict:
    return {"house": w.make_house(max_tickets_per_purchase=5), "quantity": 6}


def _under_min_per_purchase(w: World) -> dict:
    return {"house": w.make_house(min_tickets_per_purchase=2), "quantity": 1}


def _over_per_user_allowance(w: World) -> dict:
    house = w.make_house(max_tickets_per_user=3)
    w.reserve(w.player, house, 2)
    return {"house": house, "quantity": 2}


def _unknown_promotion(w: World) -> dict:
    return {"house": w.make_house(), "promo_code": "NOPE"}


def _inactive_promotion(w: World) -> dict:
    return {"house": w.make_house(), "promo_code": w.make_promotion(is_active=False).code}


def _promotion_of_another_house(w: World) -> dict:
    promotion = w.make_promotion(house=w.make_house())
    return {"house": w.make_house(), "promo_code": promotion.code}


def _promotion_used_up_by_this_player(w: World) -> dict:
    house, promotion = w.make_house(), w.make_promotion(per_user_limit=1)
    w.reserve(w.player, house, 1, promo_code=promotion.code)
    return {"house": house, "promo_code": promotion.code}


def _paused_house(w: World) -> dict:
    return {"house": w.make_house(status=House.Status.PAUSED)}


def _sales_window_over(w: World) -> dict:
    now = timezone.now()
    house = w.make_house(sales_start_at=now - timedelta(days=2), sales_end_at=now)
    return {"house": house}


def _draft_house(w: World) -> dict:
    return {"house": w.make_house(status=House.Status.DRAFT)}


def _deleted_house(w: World) -> dict:
    return {"house": w.make_house(deleted_at=timezone.now())}


def _unknown_house(w: World) -> dict:
    w.make_house()
    return {"house": 987654321}


def _unverified_player(w: World) -> dict:
    return {"house": w.make_house(), "player": w.make_player(is_verified=False)}


def _player_without_profile(w: World) -> dict:
    PlayerProfile.objects.filter(user=w.player).delete()
    return {"house": w.make_house()}


def _suspended_player(w: World) -> dict:
    return {"house": w.make_house(), "player": w.make_player(account_status="suspended")}


REFUSAL_CASES = [
    (_sold_out, domain.SoldOut),
    (_sold_out_after_others, domain.SoldOut),
    (_participant_cap, domain.ParticipantCapReached),
    (_over_max_per_purchase, domain.PurchaseLimitExceeded),
    (_under_min_per_purchase, domain.PurchaseLimitExceeded),
    (_over_per_user_allowance, domain.PurchaseLimitExceeded),
    (_unknown_promotion, domain.PromotionInvalid),
    (_inactive_promotion, domain.PromotionInvalid),
    (_promotion_of_another_house, domain.PromotionInvalid),
    (_promotion_used_up_by_this_player, domain.PromotionInvalid),
    (_paused_house, domain.SalesClosed),
    (_sales_window_over, domain.SalesClosed),
    (_draft_house, domain.NotFound),
    (_deleted_house, domain.NotFound),
    (_unknown_house, domain.NotFound),
    (_unverified_player, domain.AccountNotVerified),
    (_player_without_profile, domain.AccountNotVerified),
    (_suspended_player, domain.AccountSuspended),
]


@pytest.mark.parametrize(
    ("setup", "error"), REFUSAL_CASES, ids=[case.__name__[1:] for case, _ in REFUSAL_CASES]
)
def test_each_refusal_has_the_same_code_and_leaves_nothing_behind(
    world: World, setup: Callable[[World], dict], error: type[domain.DomainError]
) -> None:
    case = setup(world)
    house = case.pop("house")
    player = case.pop("player", world.player)
    house_id = house if isinstance(house, int) else house.pk
    before = _held(house_id) if isinstance(house, House) else None

    with pytest.raises(domain.DomainError) as refused:
        world.reserve(player, house_id, case.pop("quantity", 1), **case)

    assert type(refused.value) is error
    assert (refused.value.status_code, refused.value.code) == (error.status_code, error.code)
    if before is not None:
        assert _held(house_id) == before
    assert integrity_mismatches() == []


def test_same_key_and_body_replays_the_first_answer(world: World) -> None:
    house = world.make_house()
    first = world.reserve(world.player, house, 2, key="k1")
    again = world.reserve(world.player, house, 2, key="k1")
    assert again.replayed and not first.replayed
    assert (again.status, again.body, again.content_type) == (201, first.body, first.content_type)
    assert Reservation.objects.filter(house=house).count() == 1
    house.refresh_from_db()
    assert house.tickets_reserved == 2


def test_same_key_with_another_body_is_422(world: World) -> None:
    house = world.make_house()
    world.reserve(world.player, house, 2, key="k", fingerprint="a")
    with pytest.raises(domain.IdempotencyKeyReused) as refused:
        world.reserve(world.player, house, 3, key="k", fingerprint="b")
    assert refused.value.status_code == 422
    house.refresh_from_db()
    assert house.tickets_reserved == 2


def test_a_refusal_is_stored_and_replayed_under_its_key(world: World) -> None:
    house = world.make_house(status=House.Status.PAUSED)
    with pytest.raises(domain.SalesClosed):
        world.reserve(world.player, house, 1, key="k")
    House.objects.filter(pk=house.pk).update(status=House.Status.ACTIVE)

    replay = world.reserve(world.player, house, 1, key="k")

    assert (replay.replayed, replay.status, replay.content_type) == (
        True,
        409,
        PROBLEM_CONTENT_TYPE,
    )
    assert json.loads(replay.body)["code"] == "sales_closed"
    assert not Reservation.objects.filter(house=house).exists()


def test_a_stored_refusal_with_another_body_is_422(world: World) -> None:
    house = world.make_house(total_tickets=1)
    with pytest.raises(domain.SoldOut):
        world.reserve(world.player, house, 2, key="k", fingerprint="a")
    with pytest.raises(domain.IdempotencyKeyReused):
        world.reserve(world.player, house, 1, key="k", fingerprint="b")


def test_a_key_still_in_progress_is_409(world: World) -> None:
    """A key claimed and not completed (as ``@idempotent`` leaves it while its view runs)."""
    house = world.make_house()
    now = timezone.now()
    IdempotencyRecord.objects.create(
        user=world.player, key="k", fingerprint="f", created_at=now, expires_at=now + timedelta(1)
    )
    with pytest.raises(domain.IdempotencyKeyInProgress) as refused:
        world.reserve(world.player, house, 1, key="k", fingerprint="f")
    assert refused.value.status_code == 409
    assert not Reservation.objects.filter(house=house).exists()


def test_an_expired_key_reserves_afresh(world: World) -> None:
    house = world.make_house()
    first = world.reserve(world.player, house, 1, key="k")
    IdempotencyRecord.objects.filter(key="k").update(expires_at=timezone.now())

    again = world.reserve(world.player, house, 1, key="k")

    assert not again.replayed and again.data()["id"] != first.data()["id"]
    assert Reservation.objects.filter(house=house).count() == 2
    record = IdempotencyRecord.objects.get(key="k")
    assert bytes(record.response_body) == again.body and record.expires_at > timezone.now()


def _lose_prepared_statements() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as a pooler or DISCARD ALL would
    assert not _prepared_in_session()


def _prepared_in_session() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'reservations_reserve_v1'"
        )
        return cursor.fetchone()[0] == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_sql_path_prepares_again_when_the_session_lost_its_statement(player, make_house) -> None:
    house = make_house()
    reserve_with_sql(
        player=player,
        house_id=house.pk,
        quantity=1,
        promo_code=None,
        idempotency_key=None,
        fingerprint="",
    )
    _lose_prepared_statements()
    outcome = reserve_with_sql(
        player=player,
        house_id=house.pk,
        quantity=1,
        promo_code=None,
        idempotency_key="k",
        fingerprint="f",
    )
    assert outcome.status == 201 and _prepared_in_session()
    house.refresh_from_db()
    assert house.tickets_reserved == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_sql_path_prepares_again_in_autocommit_too(player, make_house) -> None:
    house = make_house()
    for key in ("a", "b"):
        assert not connection.in_atomic_block
        outcome = reserve_with_sql(
            player=player,
            house_id=house.pk,
            quantity=1,
            promo_code=None,
            idempotency_key=key,
            fingerprint="f",
        )
        assert outcome.status == 201 and _prepared_in_session()
        _lose_prepared_statements()
    assert Reservation.objects.filter(house=house).count() == 2
