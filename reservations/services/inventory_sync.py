"""Rebuild the Redis inventory from PostgreSQL (the truth); report the drift."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from core import metrics
from reservations import inventory, selectors

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HouseDrift:
    house_id: int
    redis_available: int | None  # None: Redis had no hash for the house
    database_available: int

    @property
    def tickets(self) -> int:
        return (self.redis_available or 0) - self.database_available


def sync_inventory() -> list[HouseDrift] | None:
    """Rebuild every active house's hash and participant set; None if another sync runs.

    Reads the database only. Pending and processing reservations count as
    reserved, taken from the rows rather than the counters.
    """
    if not inventory.enabled():
        return []
    lock = inventory.sync_lock()
    if not lock.acquire(blocking=False):
        logger.info("inventory sync already running elsewhere; skipped")
        return None
    drifts: list[HouseDrift] = []
    try:
        for house in selectors.inventory_truth():
            previous = inventory.rebuild(
                house_id=house.house_id,
                total=house.total_tickets,
                available=house.available,
                cap=house.participant_cap,
                participant_ids=selectors.participant_ids(house.house_id),
            )
            drift = HouseDrift(
                house_id=house.house_id,
                redis_available=None if previous is None or previous < 0 else previous,
                database_available=house.available,
            )
            metrics.set_gauge("inventory_drift_tickets", drift.tickets, house=str(house.house_id))
            if drift.redis_available is not None and drift.tickets:
                logger.warning(
                    "inventory drift on house %s: redis %s, database %s",
                    house.house_id,
                    drift.redis_available,
                    drift.database_available,
                )
            drifts.append(drift)
    finally:
        lock.release()
    return drifts


def refresh_house_inventory(*, house_id: int) -> None:
    """After a staff change: rebuild the house in Redis if on sale, else drop it."""
    truth = selectors.inventory_truth(house_id)
    if not truth:
        inventory.forget(house_id)
        return
    house = truth[0]
    try:
        inventory.rebuild(
            house_id=house_id,
            total=house.total_tickets,
            available=house.available,
            cap=house.participant_cap,
            participant_ids=selectors.participant_ids(house_id),
        )
    except (RedisError, OSError):
        # The database stays right; the next sync_inventory rebuilds Redis.
        logger.warning("inventory for house %s not refreshed: Redis unreachable", house_id)
        inventory.forget(house_id)
