"""Reservation writes: reserve, cancel, expire, release, inventory sync."""

from reservations.services.inventory_sync import refresh_house_inventory, sync_inventory
from reservations.services.lifecycle import (
    Hold,
    cancel_reservation,
    expire_due_reservations,
    release_holds,
)
from reservations.services.reserve import ReserveOutcome, reserve_tickets

__all__ = [
    "Hold",
    "ReserveOutcome",
    "cancel_reservation",
    "expire_due_reservations",
    "refresh_house_inventory",
    "release_holds",
    "reserve_tickets",
    "sync_inventory",
]
