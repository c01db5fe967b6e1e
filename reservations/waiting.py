"""Waiting for a checkout to settle: the long-poll behind ``Prefer: wait=N``.

When checkouts settle (``completed``, ``failed``, ``refund_pending``,
``refunded``), whoever settled them calls ``announce_settled`` after the
commit: one token per reservation in a short-lived Redis list. A request
waiting on that reservation blocks on the list (``BLPOP``), puts the token
back for any other waiter, and reads the reservation again: the answer always
comes from the database, Redis only says when to look. Without Redis (not
configured, down) the waiter looks again every ``FALLBACK_STEP_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

SETTLED_KEY = "reservation:settled:{}"
SETTLED_TTL_SECONDS = 60
MAX_WAIT_SECONDS = 10
FALLBACK_STEP_SECONDS = 0.1

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _client() -> redis.Redis | None:
    url = settings.REDIS_URL
    if not url:
        return None
    with _clients_lock:
        if url not in _clients:
            # Blocking reads: the socket waits a little longer than the longest wait.
            _clients[url] = redis.Redis.from_url(
                url,
                socket_timeout=MAX_WAIT_SECONDS + 2,
                socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
            )
        return _clients[url]


def announce_settled(reservation_ids: Iterable[uuid.UUID]) -> None:
    """Wake whoever waits on these reservations; call after the commit that settled them."""
    client = _client()
    ids = list(reservation_ids)
    if client is None or not ids:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for reservation_id in ids:
            key = SETTLED_KEY.format(reservation_id)
            pipe.rpush(key, 1)
            pipe.expire(key, SETTLED_TTL_SECONDS)
        pipe.execute()
    except (redis.RedisError, OSError):  # waiters fall back to their timeout
        logger.warning("could not announce %d settled reservations", len(ids), exc_info=True)


def wait_for_settlement(reservation_id: uuid.UUID, timeout: float) -> None:
    """Return once the reservation may have settled, or after at most ``timeout`` seconds."""
    client = _client()
    if client is not None:
        key = SETTLED_KEY.format(reservation_id)
        try:
            if client.blpop([key], timeout=max(0.01, timeout)) is not None:
                client.rpush(key, 1)  # for another request waiting on the same reservation
            return
        except (redis.RedisError, OSError):
            logger.warning("waiting on Redis failed; polling the database", exc_info=True)
    time.sleep(min(timeout, FALLBACK_STEP_SECONDS))
