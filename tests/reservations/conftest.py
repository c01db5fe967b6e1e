import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from reservations import inventory
from reservations.services import sync_inventory


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Races need 50 players; the real hasher would spend minutes making them."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def closed_breaker() -> None:
    """Each test starts with Redis trusted again (the breaker is per process)."""
    inventory.breaker.reset()


def synced() -> None:
    """Load every active house into Redis, as beat's sync_inventory does."""
    sync_inventory()


def race(workers: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``workers`` threads released together; each closes its connection."""
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # the outcome is what the test inspects
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
