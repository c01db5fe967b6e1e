"""Reads of tickets: a player's tickets, and the integrity report that counts them."""

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from lottery.models import House
from purchases.models import Ticket
from reservations import selectors as reservation_selectors
from reservations.selectors import IntegrityMismatch


def player_tickets(*, user_id: int) -> QuerySet[Ticket]:
    """A player's own tickets, newest purchase first, with the house title in the same query."""
    return (
        Ticket.objects.filter(owner_id=user_id)
        .select_related("house")
        .only(
            "id",
            "ticket_number",
            "status",
            "issued_at",
            "reservation_id",
            "house__id",
            "house__title",
        )
        .order_by("-issued_at", "house_id", "ticket_number")
    )


def integrity_mismatches() -> list[IntegrityMismatch]:
    """Every house whose counters disagree with its rows.

    sold = active tickets (here); reserved, participants and the participant
    rows are checked by ``reservations.selectors.integrity_mismatches``.
    Per house, the sold counter comes first, as it always has.
    """
    houses = (
        House.objects.annotate(
            sold_in_rows=Coalesce(
                Subquery(
                    Ticket.objects.filter(house_id=OuterRef("pk"), status=Ticket.Status.ACTIVE)
                    .values("house_id")
                    .annotate(n=Count("id"))
                    .values("n")[:1],
                    output_field=IntegerField(),
                ),
                Value(0),
            )
        )
        .order_by("pk")
        .only("id", "title", "tickets_sold")
    )
    sold = [
        IntegrityMismatch(
            house.pk, house.title, "tickets_sold", house.tickets_sold, house.sold_in_rows
        )
        for house in houses
        if house.tickets_sold != house.sold_in_rows
    ]
    # Stable sort by house: each house's sold mismatch stays ahead of its other counters.
    return sorted(sold + reservation_selectors.integrity_mismatches(), key=lambda m: m.house_id)
