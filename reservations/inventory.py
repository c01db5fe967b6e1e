"""Redis inventory: an accelerator in front of PostgreSQL, never the truth.

Per house a hash ``inv:house:{id}`` (``total``, ``available``, ``cap``,
``synced_at``, ``version``) and a set ``inv:house:{id}:participants``, changed
only by the Lua scripts below, which keep ``0 <= available <= total``, bump
``version`` on every change and answer with a status code. The reserve path
asks Redis first so a sold-out house is turned away without touching
PostgreSQL; PostgreSQL then decides for everyone else.

Every call here fails soft: Redis slower than ``INVENTORY_REDIS_TIMEOUT``
(50 ms) or down counts as a failure, the circuit breaker (``core.breaker``)
stops asking for a while, and callers take the database path (logged and counted).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import IntEnum

import redis
from django.conf import settings

from core import metrics
from core.breaker import CircuitBreaker

logger = logging.getLogger(__name__)

FAILURES_TO_OPEN = 3
OPEN_SECONDS = 5.0
# A house with no hash is rebuilt by one caller at most this often, across all processes.
MISS_REBUILD_EVERY_MS = 1000


class Gate(IntEnum):
    """What Redis said about a reservation attempt."""

    RESERVED_NEW_MEMBER = 1  # decremented; the player was added to the participant set
    RESERVED = 2  # decremented; the player was already in the set
    SOLD_OUT = 0
    UNKNOWN_HOUSE = -1  # no hash: the database decides alone
    CAP_REACHED = -2
    UNAVAILABLE = -9  # Redis down, slow or the breaker is open


# KEYS: hash, participant set. ARGV: quantity, user id.
_RESERVE = """
local available = redis.call('HGET', KEYS[1], 'available')
if not available then return -1 end
local quantity = tonumber(ARGV[1])
if tonumber(available) < quantity then return 0 end
local member = redis.call('SISMEMBER', KEYS[2], ARGV[2])
local cap = tonumber(redis.call('HGET', KEYS[1], 'cap') or '0')
if member == 0 and cap > 0 and redis.call('SCARD', KEYS[2]) >= cap then return -2 end
redis.call('HINCRBY', KEYS[1], 'available', -quantity)
redis.call('HINCRBY', KEYS[1], 'version', 1)
if member == 0 then
  redis.call('SADD', KEYS[2], ARGV[2])
  return 1
end
return 2
"""

# KEYS: hash, participant set. ARGV: delta to available, user id or '', 'add'|'remove'|''.
# Returns 1 applied, 2 clamped to [0, total] (drift seen), -1 no hash.
_ADJUST = """
local available = redis.call('HGET', KEYS[1], 'available')
if not available then return -1 end
local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
local wanted = tonumber(available) + tonumber(ARGV[1])
local result = 1
if wanted < 0 then wanted = 0; result = 2 end
if wanted > total then wanted = total; result = 2 end
redis.call('HSET', KEYS[1], 'available', wanted)
redis.call('HINCRBY', KEYS[1], 'version', 1)
if ARGV[3] == 'add' then redis.call('SADD', KEYS[2], ARGV[2]) end
if ARGV[3] == 'remove' then redis.call('SREM', KEYS[2], ARGV[2]) end
return result
"""

# KEYS: hash, participant set, staging set.
# ARGV: total, available, cap, synced_at, the version read before the database was.
# Returns the previous ``available`` (-1: there was no hash) for drift reports, or -2
# without writing when the version moved: a change the database read may not include.
_REBUILD = """
local previous = redis.call('HGET', KEYS[1], 'available')
if (redis.call('HGET', KEYS[1], 'version') or '') ~= ARGV[5] then return -2 end
if tonumber(ARGV[2]) < 0 or tonumber(ARGV[2]) > tonumber(ARGV[1]) then
  return redis.error_reply('available out of bounds')
end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'available', ARGV[2], 'cap', ARGV[3],
           'synced_at', ARGV[4])
if previous then
  redis.call('HINCRBY', KEYS[1], 'version', 1)
else
  -- A new hash starts from the clock, so a forgotten and rebuilt house never repeats a version.
  local now = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'version', now[1] * 1000000 + now[2])
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
if previous then return tonumber(previous) end
return -1
"""

NO_HASH = -1  # rebuild: Redis had no hash for the house
VERSION_CHANGED = -2  # rebuild refused: the hash changed after its version was read


def house_key(house_id: int) -> str:
    return f"inv:house:{house_id}"


def participants_key(house_id: int) -> str:
    return f"inv:house:{house_id}:participants"


@dataclass
class InventoryStats:
    """Process-local counters, read by metrics and tests."""

    fallbacks: int = 0  # operations answered without Redis
    redis_errors: int = 0
    drift_corrections: int = 0  # adjustments clamped to bounds: Redis disagreed with the DB


breaker = CircuitBreaker(
    failures_to_open=FAILURES_TO_OPEN, open_seconds=OPEN_SECONDS, name="redis_inventory"
)
stats = InventoryStats()
_clients: dict[str, tuple[redis.Redis, dict[str, object]]] = {}
_clients_lock = threading.Lock()


def enabled() -> bool:
    return bool(settings.REDIS_URL)


def _timeout() -> float:
    return settings.INVENTORY_REDIS_TIMEOUT


def _client() -> tuple[redis.Redis, dict[str, object]]:
    # One pool per URL so tests can point settings.REDIS_URL at a private server.
    url = settings.REDIS_URL
    with _clients_lock:
        if url not in _clients:
            client = redis.Redis.from_url(
                url, socket_timeout=_timeout(), socket_connect_timeout=_timeout()
            )
            scripts = {
                "reserve": client.register_script(_RESERVE),
                "adjust": client.register_script(_ADJUST),
                "rebuild": client.register_script(_REBUILD),
            }
            _clients[url] = (client, scripts)
        return _clients[url]


def _call(script: str, keys: list[str], args: list[object]) -> int | None:
    """Run one script; None means Redis could not answer (breaker, error, timeout)."""
    if not enabled():
        return None
    if not breaker.allow():
        _fall_back_while_open()
        return None
    try:
        _redis, scripts = _client()
        result = scripts[script](keys=keys, args=args)
    except (redis.RedisError, OSError) as exc:
        _fall_back_after_error(script, exc)
        return None
    breaker.record_success()
    return int(result)


def _fall_back_while_open() -> None:
    stats.fallbacks += 1
    metrics.increment("inventory_fallback_total", reason="breaker_open")
    if breaker.first_refusal_since_opening():
        logger.warning(
            "inventory redis breaker open: the database answers alone for up to %.0f s",
            breaker.open_seconds,
        )


def _fall_back_after_error(operation: str, exc: Exception) -> None:
    breaker.record_failure()
    stats.redis_errors += 1
    stats.fallbacks += 1
    metrics.increment("inventory_redis_failures_total", operation=operation)
    reason = (
        "redis_timeout" if isinstance(exc, redis.TimeoutError | TimeoutError) else "redis_error"
    )
    metrics.increment("inventory_fallback_total", reason=reason)
    logger.warning(
        "inventory redis %s failed (%s); using the database (breaker %s)",
        operation,
        type(exc).__name__,
        breaker.state,
    )


def try_reserve(*, house_id: int, user_id: int, quantity: int) -> Gate:
    result = _call(
        "reserve", [house_key(house_id), participants_key(house_id)], [quantity, user_id]
    )
    return Gate.UNAVAILABLE if result is None else Gate(result)


def adjust(
    *, house_id: int, delta: int, user_id: int | None = None, participant: str = ""
) -> int | None:
    """Move ``available`` by ``delta`` within bounds; optionally add/remove a participant."""
    result = _call(
        "adjust",
        [house_key(house_id), participants_key(house_id)],
        [delta, user_id or "", participant],
    )
    if result == 2:
        stats.drift_corrections += 1
        logger.info("inventory for house %s clamped to bounds: Redis had drifted", house_id)
    return result


def version(house_id: int) -> str:
    """The hash's change counter ('' when there is none); read it before the database."""
    client, _ = _client()
    value = client.hget(house_key(house_id), "version")
    return value.decode() if value is not None else ""


def rebuild(
    *,
    house_id: int,
    total: int,
    available: int,
    cap: int | None,
    participant_ids: list[int],
    expected_version: str,
) -> int:
    """Replace the house's hash and participant set if its version is still ``expected_version``.

    Returns the previous ``available``, ``NO_HASH``, or ``VERSION_CHANGED`` (nothing written).
    """
    client, scripts = _client()
    staging = f"{participants_key(house_id)}:staging"
    client.delete(staging)
    for start in range(0, len(participant_ids), 10_000):
        client.sadd(staging, *participant_ids[start : start + 10_000])
    result = int(
        scripts["rebuild"](
            keys=[house_key(house_id), participants_key(house_id), staging],
            args=[total, available, cap or 0, int(time.time()), expected_version],
        )
    )
    if result == VERSION_CHANGED:
        client.delete(staging)
    return result


def forget(house_id: int) -> None:
    """Drop a house from Redis (not on sale any more): the database answers alone."""
    if not enabled():
        return
    if not breaker.allow():
        _fall_back_while_open()
        return
    try:
        client, _ = _client()
        client.delete(house_key(house_id), participants_key(house_id))
        breaker.record_success()
    except (redis.RedisError, OSError) as exc:
        _fall_back_after_error("forget", exc)


@dataclass(frozen=True)
class Availability:
    total: int
    available: int
    synced_at: int


def read_availability(house_ids: list[int]) -> dict[int, Availability]:
    """Availability from Redis for the given houses; missing or unreachable ones are left out."""
    if not enabled() or not house_ids:
        return {}
    if not breaker.allow():
        _fall_back_while_open()
        return {}
    try:
        client, _ = _client()
        pipe = client.pipeline(transaction=False)
        for house_id in house_ids:
            pipe.hmget(house_key(house_id), "total", "available", "synced_at")
        rows = pipe.execute()
        breaker.record_success()
    except (redis.RedisError, OSError) as exc:
        _fall_back_after_error("read_availability", exc)
        return {}
    found = {}
    for house_id, (total, available, synced_at) in zip(house_ids, rows, strict=True):
        if total is not None and available is not None:
            found[house_id] = Availability(int(total), int(available), int(synced_at or 0))
    return found


def rebuild_key(house_id: int) -> str:
    return f"inv:rebuild:{house_id}"


def claim_rebuild_after_miss(house_id: int) -> bool:
    """True for the one caller, across processes, that rebuilds a missing hash now.

    One ``SET NX PX`` per miss: the winner rebuilds, every other miss of the
    house in the next ``MISS_REBUILD_EVERY_MS`` leaves it alone (so a house not
    on sale, which never gets a hash, costs the database one read per period).
    False when Redis cannot answer (fail soft, like every call here).
    """
    if not enabled():
        return False
    if not breaker.allow():
        _fall_back_while_open()
        return False
    try:
        client, _ = _client()
        won = client.set(rebuild_key(house_id), 1, nx=True, px=MISS_REBUILD_EVERY_MS)
    except (redis.RedisError, OSError) as exc:
        _fall_back_after_error("claim_rebuild", exc)
        return False
    breaker.record_success()
    return bool(won)


def sync_lock(timeout_seconds: int = 240) -> redis.lock.Lock:
    client, _ = _client()
    return client.lock("inv:sync:lock", timeout=timeout_seconds, blocking=False)
