"""The same reserve rules through the ORM, for databases other than PostgreSQL.

Embedded mode (SQLite) has no data-modifying CTEs in the form the hot path
uses, and needs no speed; this is the readable version of the same rules,
in the same order, with the same conditional writes. The house row is locked
first (global lock order: house, then reservation). What a repeated
``Idempotency-Key`` gets is decided by ``core.idempotency``, as on the SQL path.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import exceptions as domain
from core import idempotency
from core.idempotency import Outcome
from core.locks import lock_rows
from lottery.models import House, HouseParticipant, PlayerProfile, Promotion, PromotionRedemption
from lottery.on_sale import is_on_sale
from lottery.services import check_profile_eligible
from reservations.models import Reservation

CENT = Decimal("0.01")


def api_datetime(value: datetime) -> str:
    """The text DRF renders for a UTC datetime, so both paths' bodies and replays agree."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def reserve_with_orm(
    *,
    player: AbstractBaseUser,
    house_id: int,
    quantity: int,
    promo_code: str | None,
    idempotency_key: str | None,
    fingerprint: str,
) -> Outcome:
    stored = idempotency.stored_outcome(
        user_id=player.pk, key=idempotency_key, fingerprint=fingerprint
    )
    if stored is not None:
        return stored
    now = timezone.now()
    try:
        with transaction.atomic():
            body = _reserve(player, house_id, quantity, promo_code, now)
            if idempotency_key and not idempotency.store_outcome(
                user_id=player.pk,
                key=idempotency_key,
                fingerprint=fingerprint,
                status=201,
                body=body,
                content_type="application/json",
                now=now,
            ):
                raise IntegrityError("idempotency key taken concurrently")
    except domain.DomainError as error:
        if idempotency_key:
            idempotency.store_refusal(
                user_id=player.pk,
                key=idempotency_key,
                fingerprint=fingerprint,
                error=error,
                now=now,
            )
        raise
    except IntegrityError:
        # A concurrent request took the same participant row, promo slot or key.
        raise domain.ServiceUnavailable(
            "The house is very busy; retry shortly.", retry_after=1
        ) from None
    return Outcome(status=201, body=body)


def _reserve(
    player: AbstractBaseUser,
    house_id: int,
    quantity: int,
    promo_code: str | None,
    now: datetime,
) -> bytes:
    check_profile_eligible(PlayerProfile.objects.filter(user_id=player.pk).first())
    (houses,) = lock_rows(
        House.objects.filter(pk=house_id, deleted_at__isnull=True).exclude(
            status=House.Status.DRAFT
        )
    )
    house = houses[0] if houses else None
    if house is None:
        raise domain.NotFound()
    if not is_on_sale(house, now):
        raise domain.SalesClosed()
    if not house.min_tickets_per_purchase <= quantity <= house.max_tickets_per_purchase:
        raise domain.PurchaseLimitExceeded()
    participant = HouseParticipant.objects.filter(house=house, user_id=player.pk).first()
    held = participant.tickets_held if participant else 0
    if house.max_tickets_per_user is not None and held + quantity > house.max_tickets_per_user:
        raise domain.PurchaseLimitExceeded()
    subtotal = house.ticket_price * quantity
    promotion, discount, slot = _promotion(promo_code, house, player, now, subtotal)
    new_participant = participant is None
    if house.tickets_available < quantity:
        raise domain.SoldOut()
    if (
        new_participant
        and house.participant_cap is not None
        and house.participants_count >= house.participant_cap
    ):
        raise domain.ParticipantCapReached()
    updated = House.objects.filter(
        pk=house.pk, tickets_sold__lte=F("total_tickets") - F("tickets_reserved") - quantity
    ).update(
        tickets_reserved=F("tickets_reserved") + quantity,
        participants_count=F("participants_count") + int(new_participant),
    )
    if not updated:
        raise domain.SoldOut()
    if new_participant:
        HouseParticipant.objects.create(house=house, user_id=player.pk, tickets_held=quantity)
    else:
        HouseParticipant.objects.filter(pk=participant.pk).update(
            tickets_held=F("tickets_held") + quantity
        )
    reservation = Reservation.objects.create(
        id=uuid.uuid4(),
        house=house,
        user_id=player.pk,
        quantity=quantity,
        unit_price=house.ticket_price,
        discount=discount,
        total_price=subtotal - discount,
        currency=house.currency,
        promotion=promotion,
        expires_at=now + settings.RESERVATION_TTL,
    )
    if promotion is not None:
        counted = Promotion.objects.filter(
            Q(max_redemptions__isnull=True) | Q(times_redeemed__lt=F("max_redemptions")),
            pk=promotion.pk,
        )
        if not counted.update(times_redeemed=F("times_redeemed") + 1):
            raise domain.PromotionInvalid()
        PromotionRedemption.objects.create(
            promotion=promotion, reservation=reservation, user_id=player.pk, slot=slot
        )
    return json.dumps(
        {
            "id": str(reservation.id),
            "house_id": house.pk,
            "quantity": quantity,
            "unit_price": str(reservation.unit_price),
            "discount": str(Decimal(discount).quantize(CENT)),
            "total_price": str(Decimal(reservation.total_price).quantize(CENT)),
            "currency": reservation.currency,
            "status": reservation.status,
            "expires_at": api_datetime(reservation.expires_at),
        }
    ).encode()


def _promotion(
    promo_code: str | None,
    house: House,
    player: AbstractBaseUser,
    now: datetime,
    subtotal: Decimal,
) -> tuple[Promotion | None, Decimal, int | None]:
    if not promo_code:
        return None, Decimal("0.00"), None
    promotion = Promotion.objects.filter(code__iexact=promo_code).first()
    if (
        promotion is None
        or not promotion.is_active
        or not promotion.valid_from <= now < promotion.valid_until
        or (promotion.house_id is not None and promotion.house_id != house.pk)
        or (
            promotion.max_redemptions is not None
            and promotion.times_redeemed >= promotion.max_redemptions
        )
        or (promotion.discount_amount is not None and promotion.currency != house.currency)
    ):
        raise domain.PromotionInvalid()
    taken = set(
        PromotionRedemption.objects.filter(promotion=promotion, user_id=player.pk).values_list(
            "slot", flat=True
        )
    )
    slot = None
    if promotion.per_user_limit is not None:
        free = [s for s in range(1, promotion.per_user_limit + 1) if s not in taken]
        if not free:
            raise domain.PromotionInvalid()
        slot = free[0]
    if promotion.discount_percent is not None:
        discount = (subtotal * promotion.discount_percent / 100).quantize(CENT, ROUND_HALF_UP)
    else:
        discount = min(promotion.discount_amount, subtotal)
    return promotion, discount, slot
