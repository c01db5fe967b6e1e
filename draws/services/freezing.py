"""Freezing a closed house's ticket list, or cancelling it when too few tickets sold.

Freezing happens once no purchase of the house is in flight (pending ones expire,
processing ones finish or are settled by stuck-checkout recovery), in one
transaction under the house row lock, so the list is exactly the active tickets
at that moment: refunds of the house wait for the lock.
"""

import hashlib
import hmac
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import metrics, outbox, shutdown
from core.locks import lock_rows
from draws import verify
from draws.leaves import LEAF_BYTES, PackedLeaves, SubtreeIndex
from draws.models import Draw, FrozenTicketList
from draws.services.cancelling import cancel_lottery
from lottery.models import House
from purchases.models import Ticket
from reservations.models import Reservation

logger = logging.getLogger(__name__)

IN_FLIGHT = (Reservation.Status.PENDING, Reservation.Status.PROCESSING)
PARTICIPATION_NOT_MET = "participation_below_minimum"
NO_COMMITMENT = "no_commitment"
TICKET_FETCH_CHUNK = 20_000


def holder_for(*, house_id: int, user_id: int) -> str:
    """DRAWS.md section 2: a per-house pseudonym of a player (32 hex chars)."""
    digest = hmac.new(
        settings.DRAW_HOLDER_KEY.encode(), f"{house_id}:{user_id}".encode("ascii"), hashlib.sha256
    ).digest()
    return digest[:16].hex()


def freeze_scheduled_draws(*, now: datetime | None = None) -> dict[str, int]:
    """One pass over scheduled draws; returns how many ended each way."""
    now = now or timezone.now()
    outcomes: dict[str, int] = {}
    scheduled = Draw.objects.filter(
        status=Draw.Status.SCHEDULED, needs_attention_at__isnull=True
    ).values_list("pk", flat=True)
    for draw_id in shutdown.each("freeze_scheduled_draws", scheduled):
        try:
            outcome = freeze_draw(draw_id=draw_id, now=now)
        except Exception as exc:  # one bad house must not stop the others; retried next pass
            logger.exception("freezing draw %s failed", draw_id)
            metrics.increment("draws_errors_total", step="freeze")
            Draw.objects.filter(pk=draw_id, status=Draw.Status.SCHEDULED).update(
                last_error=f"freeze: {type(exc).__name__}: {exc}"[:2000], updated_at=timezone.now()
            )
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def freeze_draw(*, draw_id: int, now: datetime | None = None) -> str:
    """Freeze (``frozen``), cancel (``cancelled``), flag (``needs_attention``) or ``waiting``."""
    now = now or timezone.now()
    house_id = Draw.objects.values_list("house_id", flat=True).get(pk=draw_id)
    if _in_flight(house_id):
        return _waiting(draw_id, now)
    with transaction.atomic():
        [house], draws = lock_rows(
            House.objects.filter(pk=house_id),
            Draw.objects.filter(pk=draw_id, status=Draw.Status.SCHEDULED),
        )
        if not draws:
            return "gone"  # frozen by a concurrent pass
        if house.status == House.Status.CANCELLED:
            Draw.objects.filter(pk=draw_id).delete()  # a cancelled house has no draw
            return "cancelled"
        if house.status != House.Status.CLOSED:
            return "waiting"
        if _in_flight(house_id):  # a checkout settled between the check and the lock
            return "waiting"
        seed = bytes(house.draw_seed) if house.draw_seed is not None else b""
        if not seed or hashlib.sha256(seed).hexdigest() != house.draw_commitment:
            flag_needs_attention(
                draw_id=draw_id,
                reason=NO_COMMITMENT,
                detail="The house closed without a valid seed commitment; it is not drawn. "
                "Cancel its lottery (every purchase refunded) from the draw admin.",
            )
            return "needs_attention"
        if not _participation_met(house):
            cancel_lottery(house=house, reason=PARTICIPATION_NOT_MET)
            return "cancelled"
        _freeze(house=house, draw=draws[0], seed=seed, now=now)
    return "frozen"


def _in_flight(house_id: int) -> bool:
    return Reservation.objects.filter(house_id=house_id, status__in=IN_FLIGHT).exists()


def _waiting(draw_id: int, now: datetime) -> str:
    created_at = Draw.objects.values_list("created_at", flat=True).get(pk=draw_id)
    if max(now, timezone.now()) - created_at >= timedelta(
        seconds=settings.DRAW_FREEZE_WAIT_SECONDS
    ):
        return "waiting_past_bound"  # the pass asks stuck-checkout recovery to settle them
    return "waiting"


def _participation_met(house: House) -> bool:
    """Sold / total in percent reaches the minimum, and at least one ticket is sold."""
    sold = house.tickets_sold
    return sold > 0 and sold * 100 >= house.min_participation_percent * house.total_tickets


def _freeze(*, house: House, draw: Draw, seed: bytes, now: datetime) -> None:
    blob = frozen_leaves(house_id=house.pk)
    leaves = PackedLeaves(blob)
    count = len(leaves)
    if count != house.tickets_sold:
        # check_integrity names the house; the list itself is the truth of who holds what.
        logger.error(
            "house %s: %s active tickets, tickets_sold %s", house.pk, count, house.tickets_sold
        )
        metrics.increment("draws_ticket_count_mismatch_total")
    if count == 0:
        cancel_lottery(house=house, reason=PARTICIPATION_NOT_MET)
        return
    # The root from the subtree roots: one pass over the leaves gives both.
    subtree_index = SubtreeIndex.build(leaves)
    root = subtree_index.tree_root().hex()
    ticket_list = store_ticket_list(
        house_id=house.pk, tickets_root=root, leaves=blob, subtree_index=subtree_index.pack()
    )
    del blob, leaves
    closed_at = now.replace(microsecond=0)
    beacon_round = verify.round_at_or_after(
        int(closed_at.timestamp()) + settings.DRAW_BEACON_DELAY_SECONDS, verify.QUICKNET
    )
    Draw.objects.filter(pk=draw.pk, status=Draw.Status.SCHEDULED).update(
        status=Draw.Status.WAITING_ENTROPY,
        ticket_list=ticket_list,
        algorithm_version=verify.ALGORITHM_VERSION,
        commitment=house.draw_commitment,
        seed=seed.hex(),
        tickets_root=root,
        tickets_count=count,
        alternates_count=min(settings.DRAW_ALTERNATES, count - 1),
        beacon_chain=verify.QUICKNET.hash,
        beacon_round=beacon_round,
        closed_at=closed_at,
        last_error="",
        updated_at=timezone.now(),
    )
    outbox.emit(
        "draw.frozen",
        {
            "draw_id": draw.pk,
            "house_id": house.pk,
            "tickets_count": count,
            "tickets_root": root,
            "beacon_round": beacon_round,
        },
    )
    logger.info(
        "draw %s froze %s tickets of house %s; round %s", draw.pk, count, house.pk, beacon_round
    )


def store_ticket_list(
    *, house_id: int, tickets_root: str, leaves: bytearray, subtree_index: bytes | None = None
) -> FrozenTicketList:
    """Insert the frozen list; on PostgreSQL by binary COPY, so megabytes of leaves travel
    as they are (a parameter would be escaped into a query string twice their size)."""
    count = len(leaves) // LEAF_BYTES
    if connection.vendor != "postgresql":
        return FrozenTicketList.objects.create(
            house_id=house_id,
            tickets_root=tickets_root,
            tickets_count=count,
            leaves=bytes(leaves),
            subtree_index=subtree_index,
        )
    table = FrozenTicketList._meta.db_table
    with connection.cursor() as cursor:
        statement = (
            f"COPY {table} (house_id, tickets_root, tickets_count, leaves, subtree_index,"
            " created_at) FROM STDIN (FORMAT BINARY)"
        )
        with cursor.cursor.copy(statement) as copy:
            copy.set_types(["int8", "varchar", "int4", "bytea", "bytea", "timestamptz"])
            copy.write_row((house_id, tickets_root, count, leaves, subtree_index, timezone.now()))
    return FrozenTicketList.objects.defer("leaves").get(house_id=house_id)


def frozen_leaves(*, house_id: int) -> bytearray:
    """The active tickets of a house, ascending by number, as packed 24-byte leaves."""
    holders: dict[int, str] = {}
    blob = bytearray()
    tickets = (
        Ticket.objects.filter(house_id=house_id, status=Ticket.Status.ACTIVE)
        .order_by("ticket_number")
        .values_list("ticket_number", "owner_id")
    )
    for ticket_number, owner_id in tickets.iterator(chunk_size=TICKET_FETCH_CHUNK):
        holder = holders.get(owner_id)
        if holder is None:
            holder = holders[owner_id] = holder_for(house_id=house_id, user_id=owner_id)
        blob += verify.leaf_bytes(ticket_number, holder)
    return blob


def flag_needs_attention(*, draw_id: int, reason: str, detail: str) -> bool:
    """Set the draw aside for staff, once: log, metric and a ``draw.needs_attention`` event."""
    with transaction.atomic():
        now = timezone.now()
        flagged = Draw.objects.filter(pk=draw_id, needs_attention_at__isnull=True).update(
            needs_attention_at=now, last_error=f"{reason}: {detail}", updated_at=now
        )
        if not flagged:
            return False
        house_id = Draw.objects.values_list("house_id", flat=True).get(pk=draw_id)
        outbox.emit(
            "draw.needs_attention",
            {"draw_id": draw_id, "house_id": house_id, "reason": reason, "detail": detail},
        )
    logger.error("draw %s of house %s needs attention: %s", draw_id, house_id, reason)
    metrics.increment("draws_needs_attention_total", reason=reason)
    return True
