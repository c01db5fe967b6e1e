"""Fault injection for crash tests: make a named line fail, in any process.

Armed through Redis (so a test can arm a real worker process) and active only
with ``FAILPOINTS_ENABLED=1``; in production ``hit()`` is one settings lookup.
Actions: ``raise`` (an exception at that line) or ``crash`` (the process is
killed with SIGKILL, as if the machine died there).
"""

import os
import signal

import redis
from django.conf import settings

KEY_PREFIX = "failpoint:"


class InjectedFault(Exception):
    """Raised at an armed failpoint."""


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)


def arm(name: str, *, action: str = "raise", times: int = 1) -> None:
    """Fire ``action`` the next ``times`` times the failpoint ``name`` is hit."""
    if action not in ("raise", "crash"):
        raise ValueError(f"unknown failpoint action {action!r}")
    client = _client()
    client.delete(KEY_PREFIX + name)
    client.rpush(KEY_PREFIX + name, *([action] * times))


def disarm(name: str) -> None:
    _client().delete(KEY_PREFIX + name)


def hit(name: str) -> None:
    if not settings.FAILPOINTS_ENABLED:
        return
    action = _client().lpop(KEY_PREFIX + name)
    if action is None:
        return
    if action == b"crash":
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedFault(f"failpoint {name}")
