"""Reservation state changes after the reserve: cancel, expire, release what they hold.

Every transition is a conditional UPDATE on the current status (invariant 7)
and releases the house counters, the participant row and the promotion use in
the same transaction. Locks are taken through ``core.locks`` in the global order: house,
then reservation. Redis is corrected only after the commit.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from core import exceptions as domain
from core import metrics, shutdown
from core.audit import log_action
from core.locks import SkipLocked, lock_rows
from lottery.models import House, HouseParticipant, Promotion, PromotionRedemption
from reservations import inventory
from reservations.models import Reservation

logger = logging.getLogger(__name__)

EXPIRY_BATCH_SIZE = 200
EXPIRY_MAX_BATCHES = 50  # 10,000 reservations per run (every 30 s); the rest next run


@dataclass(frozen=True)
class Hold:
    """What one reservation holds on its house, as read under its row lock."""

    id: uuid.UUID
    house_id: int
    user_id: int
    quantity: int
    promotion_id: int | None


_HOLD_FIELDS = ("id", "house_id", "user_id", "quantity", "promotion_id")


def release_holds(*, house_id: int, holds: list[Hold], counter: str = "tickets_reserved") -> None:
    """Give back what ``holds`` took from one house; call inside the transition's transaction.

    ``counter`` is ``tickets_reserved`` for pending/processing reservations and
    ``tickets_sold`` for completed ones (refunds). The caller has locked the
    house row and moved the reservations out of their holding status.
    """
    if not holds:
        return
    quantity = sum(hold.quantity for hold in holds)
    per_user: dict[int, int] = defaultdict(int)
    for hold in holds:
        per_user[hold.user_id] += hold.quantity
    gone: list[int] = []
    for user_id, held in per_user.items():
        kept = HouseParticipant.objects.filter(
            house_id=house_id, user_id=user_id, tickets_held__gt=held
        ).update(tickets_held=F("tickets_held") - held)
        if kept:
            continue
        removed, _ = HouseParticipant.objects.filter(
            house_id=house_id, user_id=user_id, tickets_held=held
        ).delete()
        if not removed:
            # The participant row disagrees with the reservations: refuse, roll back.
            raise domain.InvalidState(f"Participant counters of house {house_id} are inconsistent.")
        gone.append(user_id)
    updated = House.objects.filter(pk=house_id, **{f"{counter}__gte": quantity}).update(
        **{counter: F(counter) - quantity},
        participants_count=F("participants_count") - len(gone),
    )
    if not updated:
        raise domain.InvalidState(f"Counters of house {house_id} are inconsistent.")
    _release_promotions([hold.id for hold in holds if hold.promotion_id])
    # Reserved or sold, the tickets are back on sale and the players who hold
    # nothing else leave the participant set: Redis learns both once committed.
    transaction.on_commit(lambda: _return_to_redis(house_id, quantity, gone))


def _release_promotions(reservation_ids: list[uuid.UUID]) -> None:
    if not reservation_ids:
        return
    redemptions = PromotionRedemption.objects.filter(reservation_id__in=reservation_ids)
    per_promotion = dict(
        redemptions.values("promotion_id")
        .annotate(uses=Count("id"))
        .values_list("promotion_id", "uses")
    )
    redemptions.delete()
    for promotion_id, uses in per_promotion.items():
        Promotion.objects.filter(pk=promotion_id, times_redeemed__gte=uses).update(
            times_redeemed=F("times_redeemed") - uses
        )


def _return_to_redis(house_id: int, quantity: int, gone_user_ids: Iterable[int]) -> None:
    inventory.adjust(house_id=house_id, delta=quantity)
    for user_id in gone_user_ids:
        inventory.adjust(house_id=house_id, delta=0, user_id=user_id, participant="remove")


def cancel_reservation(*, player: AbstractBaseUser, reservation_id: uuid.UUID) -> Reservation:
    """The player gives up a pending reservation; its tickets go back on sale at once."""
    with transaction.atomic():
        _end_pending(
            Reservation.objects.filter(pk=reservation_id, user_id=player.pk),
            to_status=Reservation.Status.CANCELLED,
            refusal="Only a pending reservation can be cancelled.",
        )
        transaction.on_commit(lambda: metrics.increment("reservations_cancelled_total"))
    return Reservation.objects.get(pk=reservation_id)


def expire_reservation(*, reservation_id: uuid.UUID, actor: AbstractBaseUser) -> Reservation:
    """Staff expire one pending reservation now; the same transition as the sweep. Audited."""
    with transaction.atomic():
        _end_pending(
            Reservation.objects.filter(pk=reservation_id),
            to_status=Reservation.Status.EXPIRED,
            refusal="Only a pending reservation can be expired.",
        )
        log_action(
            actor=actor,
            action="reservation_expired",
            obj_type=Reservation,
            obj_id=reservation_id,
            before={"status": Reservation.Status.PENDING},
            after={"status": Reservation.Status.EXPIRED},
        )
        transaction.on_commit(lambda: metrics.increment("reservations_expired_total"))
    return Reservation.objects.get(pk=reservation_id)


def _end_pending(reservation: QuerySet[Reservation], *, to_status: str, refusal: str) -> None:
    """Move one pending reservation to ``to_status`` under the house lock and free its holds."""
    house_id = reservation.values_list("house_id", flat=True).first()
    if house_id is None:
        raise domain.NotFound()
    pending = reservation.filter(status=Reservation.Status.PENDING)
    _, rows = lock_rows(
        House.objects.filter(pk=house_id).values_list("pk", flat=True),
        pending.values(*_HOLD_FIELDS),
    )
    if not rows:
        raise domain.InvalidState(refusal)
    [row] = rows
    pending.update(status=to_status, updated_at=timezone.now())
    release_holds(house_id=house_id, holds=[Hold(**row)])


def expire_due_reservations(
    *,
    now: datetime | None = None,
    batch_size: int = EXPIRY_BATCH_SIZE,
    max_batches: int = EXPIRY_MAX_BATCHES,
) -> int:
    """Expire pending reservations past ``expires_at``; returns how many this run expired.

    Safe to run twice at once: rows are claimed with ``skip_locked`` and every
    transition is conditional on ``pending``, so each reservation is released once.
    """
    now = now or timezone.now()
    expired = 0
    house_ids = list(
        Reservation.objects.filter(status=Reservation.Status.PENDING, expires_at__lte=now)
        # Without clearing Meta.ordering, DISTINCT would be per (house, created_at):
        # one pointless lock of the house row per due reservation.
        .order_by()
        .values_list("house_id", flat=True)
        .distinct()
    )
    budget = shutdown.batches("expire_reservations", max_batches=max_batches)  # all houses'
    for house_id in house_ids:
        try:
            expired += _expire_house(
                house_id=house_id, now=now, batch_size=batch_size, budget=budget
            )
        except domain.InvalidState:
            # One inconsistent house must not keep every other house's tickets held.
            logger.exception("expiry of house %s refused; check_integrity will name it", house_id)
            metrics.increment("reservations_expiry_errors_total")
    return expired


def _expire_house(*, house_id: int, now: datetime, batch_size: int, budget: Iterator[int]) -> int:
    expired = 0
    for _ in budget:
        done = _expire_batch(house_id=house_id, now=now, batch_size=batch_size)
        expired += done
        if done < batch_size:
            return expired
    return expired


def _expire_batch(*, house_id: int, now: datetime, batch_size: int) -> int:
    with transaction.atomic():
        _, rows = lock_rows(
            House.objects.filter(pk=house_id).values_list("pk", flat=True),
            SkipLocked(
                Reservation.objects.filter(
                    house_id=house_id, status=Reservation.Status.PENDING, expires_at__lte=now
                )
                .order_by("expires_at")
                .values(*_HOLD_FIELDS)[:batch_size]
            ),
        )
        if not rows:
            return 0
        holds = [Hold(**row) for row in rows]
        moved = Reservation.objects.filter(
            pk__in=[hold.id for hold in holds], status=Reservation.Status.PENDING
        ).update(status=Reservation.Status.EXPIRED, updated_at=now)
        if moved != len(holds):
            raise domain.InvalidState("A locked pending reservation changed under the sweep.")
        release_holds(house_id=house_id, holds=holds)
    metrics.increment("reservations_expired_total", len(holds))
    logger.info("expired %d reservations of house %s", len(holds), house_id)
    return len(holds)
