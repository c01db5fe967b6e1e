"""Rebuild the Redis inventory from PostgreSQL (the truth); report the drift."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import DatabaseError
from redis.exceptions import RedisError

from core import metrics, shutdown
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


# A house whose hash keeps changing during its database read is left for the next run.
REBUILD_ATTEMPTS = 3


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
        for house_id in shutdown.each("sync_inventory", selectors.house_ids_on_sale()):
            drift = _rebuild_house(house_id)
            if drift is None:
                continue
            metrics.set_gauge("inventory_drift_tickets", drift.tickets, house=str(house_id))
            if drift.redis_available is not None and drift.tickets:
                logger.warning(
                    "inventory drift on house %s: redis %s, database %s",
                    house_id,
                    drift.redis_available,
                    drift.database_available,
                )
            drifts.append(drift)
    finally:
        lock.release()
    return drifts


def _rebuild_house(house_id: int) -> HouseDrift | None:
    """Rebuild one house from a database read no Redis change overtook; None if not done.

    The version is read before the database: a cancel or expiry that commits
    after the read adjusts Redis after it too, which moves the version, and the
    rebuild script then refuses instead of overwriting that adjustment with the
    older count. Raises like any Redis call when Redis cannot be reached.
    """
    for _ in range(REBUILD_ATTEMPTS):
        expected_version = inventory.version(house_id)
        truth = selectors.inventory_truth(house_id)
        if not truth:
            return None  # no longer on sale since the list was read
        house = truth[0]
        previous = inventory.rebuild(
            house_id=house_id,
            total=house.total_tickets,
            available=house.available,
            cap=house.participant_cap,
            participant_ids=selectors.participant_ids(house_id),
            expected_version=expected_version,
        )
        if previous != inventory.VERSION_CHANGED:
            return HouseDrift(
                house_id=house_id,
                redis_available=None if previous == inventory.NO_HASH else previous,
                database_available=house.available,
            )
    logger.warning(
        "inventory for house %s not rebuilt: it changed during %s database reads; next sync",
        house_id,
        REBUILD_ATTEMPTS,
    )
    return None


def refresh_after_house_change(sender: object, *, house_id: int, **kwargs: object) -> None:
    """Receiver of ``lottery.signals.house_changed``."""
    refresh_house_inventory(house_id=house_id)


def refresh_house_inventory(*, house_id: int) -> None:
    """After a staff change: rebuild the house in Redis if on sale, else drop it."""
    if not inventory.enabled():
        return
    try:
        rebuilt = _rebuild_house(house_id)
    except (RedisError, OSError):
        # The database stays right; the next sync_inventory rebuilds Redis.
        logger.warning("inventory for house %s not refreshed: Redis unreachable", house_id)
        rebuilt = None
    if rebuilt is None:
        inventory.forget(house_id)


def rebuild_after_miss(*, house_id: int) -> None:
    """Redis had no hash for a house a player just asked for: rebuild it now, once.

    Called after the caller's reservation attempt is over (committed, refused
    or rolled back), never before the database answers. Single flight across
    processes (``inventory.claim_rebuild_after_miss``); the rebuild is the
    sync's own versioned one, so it never overwrites a newer Redis change, and
    a house not on sale gets no hash. Never raises: the database stays right,
    the next miss after the throttle period or the next sync tries again.
    """
    if not inventory.claim_rebuild_after_miss(house_id):
        return
    try:
        rebuilt = _rebuild_house(house_id)
    except (RedisError, OSError, DatabaseError) as exc:
        logger.warning(
            "inventory for house %s not rebuilt after a miss (%s); the database answers",
            house_id,
            type(exc).__name__,
        )
        return
    if rebuilt is None:
        logger.info(
            "inventory for house %s not rebuilt after a miss: not on sale or busy", house_id
        )
        return
    metrics.increment("inventory_rebuilds_total", reason="miss")
    logger.info(
        "inventory for house %s rebuilt after a miss: %s tickets available",
        house_id,
        rebuilt.database_available,
    )
