"""Reads of reservations, inventory truth and integrity reports."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.expressions import ArraySubquery
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import (
    Count,
    Expression,
    F,
    IntegerField,
    JSONField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from core import exceptions as domain
from lottery.models import House, HouseParticipant
from reservations import inventory, waiting
from reservations.models import Reservation


def reservations_of(player: AbstractBaseUser) -> QuerySet[Reservation]:
    """The player's own reservations, newest first."""
    return Reservation.objects.filter(user_id=player.pk).order_by("-created_at", "-id")


def _active_ticket_numbers() -> Expression:
    """The reservation's valid ticket numbers, ascending; refunded tickets no longer count.

    Tickets are ``purchases`` rows (an app above this one): they are reached through
    the reverse relation their foreign key puts on ``Reservation``, never imported.
    """
    tickets = Reservation._meta.get_field("tickets").related_model
    numbers = (
        tickets.objects.filter(reservation_id=OuterRef("pk"), status=tickets.Status.ACTIVE)
        .order_by("ticket_number")
        .values("ticket_number")
    )
    if connection.vendor == "postgresql":
        return ArraySubquery(numbers)
    # The embedded mode's SQLite has no arrays: the same rows, in order, as a JSON list.
    return Subquery(
        numbers,
        template="(SELECT json_group_array(ticket_number) FROM (%(subquery)s))",
        output_field=JSONField(),
    )


def reservations_with_tickets(queryset: QuerySet[Reservation]) -> QuerySet[Reservation]:
    """What the API renders, in one statement whatever the page size.

    Each reservation carries ``promo_code`` (or None) and ``ticket_numbers``.
    """
    return queryset.annotate(
        promo_code=F("promotion__code"), ticket_numbers=_active_ticket_numbers()
    )


def reservation_of(player: AbstractBaseUser, reservation_id: uuid.UUID) -> Reservation:
    """One of the player's reservations; someone else's is indistinguishable from none."""
    if connection.vendor == "postgresql":
        reservation = reservation_read_with_sql(player.pk, reservation_id)
    else:
        reservation = reservation_read_with_orm(player.pk, reservation_id)
    if reservation is None:
        raise domain.NotFound()
    return reservation


def reservation_read_with_orm(player_id: int, reservation_id: uuid.UUID) -> Reservation | None:
    """``reservations_with_tickets`` for one reservation: lists and SQLite read this way."""
    return (
        reservations_with_tickets(Reservation.objects.filter(user_id=player_id))
        .filter(pk=reservation_id)
        .first()
    )


def reservation_read_with_sql(player_id: int, reservation_id: uuid.UUID) -> Reservation | None:
    """The same read as ``reservation_read_with_orm``, as one statement written out.

    A client polls this read until its checkout settles; composing the query
    through the ORM cost three times what running it does (~1 ms of CPU a
    request). tests/reservations/test_reservation_read.py checks both agree.
    """
    statement, field_names, active = _reservation_statement()
    with connection.cursor() as cursor:
        cursor.execute(statement, [active, reservation_id, player_id])
        row = cursor.fetchone()
    if row is None:
        return None
    reservation = Reservation.from_db(DEFAULT_DB_ALIAS, field_names, row[:-2])
    reservation.promo_code, reservation.ticket_numbers = row[-2:]
    return reservation


@functools.cache
def _reservation_statement() -> tuple[str, list[str], str]:
    """PostgreSQL's statement for one player's reservation, its columns' attributes, and
    the status of a valid ticket (the statement's first parameter)."""
    fields = Reservation._meta.concrete_fields
    promotions = Reservation._meta.get_field("promotion").related_model._meta.db_table
    ticket_model = Reservation._meta.get_field("tickets").related_model
    tickets = ticket_model._meta.db_table
    columns = ", ".join(f'r."{field.column}"' for field in fields)
    statement = f"""
        SELECT {columns}, p.code,
               ARRAY(SELECT t.ticket_number FROM "{tickets}" t
                     WHERE t.reservation_id = r.id AND t.status = %s
                     ORDER BY t.ticket_number)
        FROM "{Reservation._meta.db_table}" r
        LEFT JOIN "{promotions}" p ON p.id = r.promotion_id
        WHERE r.id = %s AND r.user_id = %s
    """  # noqa: S608 (names from the models, values as parameters)
    return statement, [field.attname for field in fields], ticket_model.Status.ACTIVE.value


@dataclass(frozen=True)
class AwaitedReservation:
    reservation: Reservation
    wait_applied: int  # seconds the request was allowed to wait on the checkout; 0: it did not


def reservation_awaited(
    player: AbstractBaseUser, reservation_id: uuid.UUID, *, wait_seconds: int
) -> AwaitedReservation:
    """The reservation; while it is ``processing``, read again as its checkout settles.

    Waits at most ``wait_seconds`` (``Prefer: wait=N``, already capped), and only
    on a reservation that is processing when first read: nothing else settles by itself.
    """
    reservation = reservation_of(player, reservation_id)
    if not wait_seconds or reservation.status != Reservation.Status.PROCESSING:
        return AwaitedReservation(reservation, wait_applied=0)
    deadline = time.monotonic() + wait_seconds
    while reservation.status == Reservation.Status.PROCESSING:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        waiting.wait_for_settlement(reservation.pk, left)
        reservation = reservation_of(player, reservation_id)
    return AwaitedReservation(reservation, wait_applied=wait_seconds)


@dataclass(frozen=True)
class HouseInventory:
    house_id: int
    total_tickets: int
    available: int
    participant_cap: int | None


def _sum_of(queryset: QuerySet, field: str = "quantity") -> Coalesce:
    return Coalesce(
        Subquery(
            queryset.values("house_id").annotate(total=Sum(field)).values("total")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
    )


def house_ids_on_sale() -> list[int]:
    """The houses Redis keeps an inventory for."""
    return list(
        House.objects.filter(status=House.Status.ACTIVE, deleted_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def inventory_truth(house_id: int | None = None) -> list[HouseInventory]:
    """What Redis should say for every house on sale, from the rows themselves.

    ``sync_inventory`` reads one house at a time, just before rebuilding it,
    so the count is never older than that house's Redis version check.
    """
    held = Reservation.objects.filter(
        house_id=OuterRef("pk"), status__in=Reservation.HOLDING_RESERVED
    )
    houses = House.objects.filter(status=House.Status.ACTIVE, deleted_at__isnull=True).annotate(
        reserved_in_rows=_sum_of(held)
    )
    if house_id is not None:
        houses = houses.filter(pk=house_id)
    return [
        HouseInventory(
            house_id=house.pk,
            total_tickets=house.total_tickets,
            available=max(house.total_tickets - house.tickets_sold - house.reserved_in_rows, 0),
            participant_cap=house.participant_cap,
        )
        for house in houses.only("id", "total_tickets", "tickets_sold", "participant_cap")
    ]


def participant_ids(house_id: int) -> list[int]:
    return list(
        HouseParticipant.objects.filter(house_id=house_id).values_list("user_id", flat=True)
    )


@dataclass(frozen=True)
class IntegrityMismatch:
    house_id: int
    title: str
    counter: str
    recorded: int
    actual: int

    def __str__(self) -> str:
        return (
            f"house {self.house_id} ({self.title}): {self.counter} is {self.recorded}, "
            f"the rows say {self.actual}"
        )


def integrity_mismatches() -> list[IntegrityMismatch]:
    """Every house whose reservation counters disagree with its rows.

    reserved = pending + processing quantities; participants = distinct players
    holding pending, processing or completed reservations (and the participant
    rows agree with both). Sold tickets are checked by ``purchases.selectors``.
    """
    holding = Reservation.objects.filter(house_id=OuterRef("pk"), status__in=Reservation.HOLDING)
    houses = House.objects.annotate(
        reserved_in_rows=_sum_of(
            Reservation.objects.filter(
                house_id=OuterRef("pk"), status__in=Reservation.HOLDING_RESERVED
            )
        ),
        holders_in_rows=Coalesce(
            Subquery(
                holding.values("house_id")
                .annotate(n=Count("user_id", distinct=True))
                .values("n")[:1],
                output_field=IntegerField(),
            ),
            Value(0),
        ),
        participant_rows=Coalesce(
            Subquery(
                HouseParticipant.objects.filter(house_id=OuterRef("pk"))
                .values("house_id")
                .annotate(n=Count("id"))
                .values("n")[:1],
                output_field=IntegerField(),
            ),
            Value(0),
        ),
        held_in_participants=_sum_of(
            HouseParticipant.objects.filter(house_id=OuterRef("pk")), "tickets_held"
        ),
        held_in_rows=_sum_of(holding),
    ).order_by("pk")
    mismatches = []
    for house in houses:
        checks = [
            ("tickets_reserved", house.tickets_reserved, house.reserved_in_rows),
            ("participants_count", house.participants_count, house.holders_in_rows),
            ("participant rows", house.participant_rows, house.holders_in_rows),
            ("tickets held by participants", house.held_in_participants, house.held_in_rows),
        ]
        mismatches.extend(
            IntegrityMismatch(house.pk, house.title, counter, recorded, actual)
            for counter, recorded, actual in checks
            if recorded != actual
        )
    return mismatches


# Redis counts are corrected on every reservation and rebuilt every 5 minutes; a hash
# not rebuilt for three rounds is not trusted any more.
AVAILABILITY_FRESH_FOR_SECONDS = 15 * 60


def live_availability(houses: list[House]) -> dict[int, inventory.Availability]:
    """Redis availability of the active houses among ``houses``, where recently rebuilt."""
    active = [house.pk for house in houses if house.status == House.Status.ACTIVE]
    cutoff = time.time() - AVAILABILITY_FRESH_FOR_SECONDS
    return {
        house_id: availability
        for house_id, availability in inventory.read_availability(active).items()
        if availability.synced_at >= cutoff
    }
