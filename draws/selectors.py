"""Reads of draws: the frozen leaves (in slices, never more than needed), proofs, stats."""

from collections.abc import Iterator

from django.db.models import Count, DecimalField, Exists, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Substr

from core import exceptions as domain
from draws.leaves import LEAF_BYTES, PackedLeaves, SubtreeIndex, unpack
from draws.models import Draw, FrozenTicketList
from purchases.models import Ticket
from reservations.models import Reservation

TICKETS_CHUNK_LEAVES = 8192


def _slice(ticket_list_id: int, first_leaf: int, leaves: int) -> bytes:
    """Bytes of ``leaves`` leaves from ``first_leaf``, read by the database, not the whole list."""
    part = (
        FrozenTicketList.objects.filter(pk=ticket_list_id)
        .annotate(part=Substr("leaves", first_leaf * LEAF_BYTES + 1, leaves * LEAF_BYTES))
        .values_list("part", flat=True)
        .get()
    )
    return bytes(part)


def leaves_at(ticket_list_id: int, indices: list[int]) -> list[tuple[int, str]]:
    """(ticket_number, holder) of the leaves at ``indices``, in that order."""
    return [unpack(_slice(ticket_list_id, index, 1)) for index in indices]


def leaf_chunks(
    ticket_list_id: int, tickets_count: int, chunk_leaves: int = TICKETS_CHUNK_LEAVES
) -> Iterator[bytes]:
    for first in range(0, tickets_count, chunk_leaves):
        yield _slice(ticket_list_id, first, min(chunk_leaves, tickets_count - first))


def all_leaves(ticket_list_id: int) -> PackedLeaves:
    blob = FrozenTicketList.objects.values_list("leaves", flat=True).get(pk=ticket_list_id)
    return PackedLeaves(bytes(blob))


def draws_list(*, house_id: int | None = None) -> QuerySet[Draw]:
    """Draws from close on, history included (a redraw shows both); scheduled ones too."""
    draws = Draw.objects.select_related("house").order_by("-created_at", "-id")
    if house_id is not None:
        draws = draws.filter(house_id=house_id)
    return draws


def winner(draw: Draw) -> dict | None:
    """``{user_id, username}`` of the awarded ticket's holder (for the winner and staff only)."""
    if draw.awarded_ticket_number is None:
        return None
    row = (
        Ticket.objects.filter(house_id=draw.house_id, ticket_number=draw.awarded_ticket_number)
        .values_list("owner_id", "owner__username")
        .first()
    )
    return {"user_id": row[0], "username": row[1]} if row else None


def ticket_proof(*, user_id: int, ticket_id: int) -> dict:
    """The inclusion proof of one's own ticket in its house's frozen list."""
    ticket = Ticket.objects.filter(pk=ticket_id, owner_id=user_id).first()
    if ticket is None:
        raise domain.NotFound()
    ticket_list = (
        FrozenTicketList.objects.filter(house_id=ticket.house_id)
        .values_list("pk", "tickets_root", "tickets_count", "subtree_index")
        .first()
    )
    draw = (
        Draw.objects.filter(house_id=ticket.house_id)
        .exclude(status=Draw.Status.SUPERSEDED)
        .values_list("pk", flat=True)
        .first()
    )
    if ticket_list is None or draw is None:
        raise domain.InvalidState("This house's ticket list is not frozen yet.")
    ticket_list_id, tickets_root, tickets_count, packed_index = ticket_list
    if packed_index is None:  # frozen by a process older than the index (a rolling deploy)
        subtree_index = SubtreeIndex.build(all_leaves(ticket_list_id))
    else:
        subtree_index = SubtreeIndex.unpack(bytes(packed_index))
    # One subtree's leaves, read by the database, and the stored roots of all of them.
    subtree = subtree_index.subtree_of(ticket.ticket_number)
    offset = None
    if subtree is not None:
        size = subtree_index.subtree_size
        first = subtree * size
        leaves = PackedLeaves(_slice(ticket_list_id, first, min(size, tickets_count - first)))
        offset = leaves.index_of(ticket.ticket_number)
    if offset is None:
        raise domain.NotFound("This ticket is not in the frozen list (refunded before close).")
    path = subtree_index.audit_path(leaves, subtree, offset)
    return {
        "ticket_number": ticket.ticket_number,
        "holder": leaves.holder(offset),
        "leaf_index": first + offset,
        "tree_size": tickets_count,
        "audit_path": [node.hex() for node in path],
        "tickets_root": tickets_root,
        "draw_id": draw,
    }


def player_stats(*, user_id: int) -> dict:
    """Counts and sums of one player, each computed by the database."""
    tickets = Ticket.objects.filter(owner_id=user_id).aggregate(
        tickets_total=Count("id"),
        tickets_active=Count("id", filter=Q(status=Ticket.Status.ACTIVE)),
        houses_entered=Count("house_id", distinct=True),
    )
    spent = Reservation.objects.filter(
        user_id=user_id, status=Reservation.Status.COMPLETED
    ).aggregate(
        total=Coalesce(
            Sum("total_price"), Value(0), output_field=DecimalField(max_digits=14, decimal_places=2)
        )
    )["total"]
    wins = (
        Draw.objects.filter(status=Draw.Status.COMPLETED)
        .filter(
            Exists(
                Ticket.objects.filter(
                    owner_id=user_id,
                    house_id=OuterRef("house_id"),
                    ticket_number=OuterRef("awarded_ticket_number"),
                )
            )
        )
        .count()
    )
    return {**tickets, "wins": wins, "total_spent": spent}
