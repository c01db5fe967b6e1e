"""Fault injection for crash tests: make a named line fail, in any process.

Armed through Redis (so a test can arm a real worker process) and active only
with ``FAILPOINTS_ENABLED=1``; in production ``hit()`` is one settings lookup.
Actions: ``raise`` (an exception at that line), ``crash`` (the process is
killed with SIGKILL, as if the machine died there) or ``sleep:<seconds>`` (the
line pauses, so a test can stop or kill the process in the middle of the work).
Every armed hit is counted (``hits()``), so a test knows the line was reached.
"""

import os
import signal
import time

import redis
from django.conf import settings

KEY_PREFIX = "failpoint:"
HITS_PREFIX = "failpoint-hits:"


class InjectedFault(Exception):
    """Raised at an armed failpoint."""


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)


def arm(name: str, *, action: str = "raise", times: int = 1) -> None:
    """Fire ``action`` the next ``times`` times the failpoint ``name`` is hit."""
    if action not in ("raise", "crash") and not _is_sleep(action):
        raise ValueError(f"unknown failpoint action {action!r}")
    client = _client()
    client.delete(KEY_PREFIX + name, HITS_PREFIX + name)
    client.rpush(KEY_PREFIX + name, *([action] * times))


def disarm(name: str) -> None:
    _client().delete(KEY_PREFIX + name, HITS_PREFIX + name)


def hits(name: str) -> int:
    """How many times an armed action of ``name`` fired since it was armed."""
    return int(_client().get(HITS_PREFIX + name) or 0)


def _is_sleep(action: str) -> bool:
    prefix, _, seconds = action.partition(":")
    return prefix == "sleep" and seconds.replace(".", "", 1).isdigit()


def hit(name: str) -> None:
    if not settings.FAILPOINTS_ENABLED:
        return
    client = _client()
    action = client.lpop(KEY_PREFIX + name)
    if action is None:
        return
    client.incr(HITS_PREFIX + name)
    if action.startswith(b"sleep:"):
        time.sleep(float(action.decode().partition(":")[2]))
        return
    if action == b"crash":
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedFault(f"failpoint {name}")
