import itertools
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from lottery.models import House, Promotion
from reservations import inventory
from reservations.services import sync_inventory

_codes = itertools.count(1)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Races need 50 players; the real hasher would spend minutes making them."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def closed_breaker() -> None:
    """Each test starts with Redis trusted again (the breaker is per process)."""
    inventory.breaker.reset()


def create_house(**overrides: Any) -> House:
    now = timezone.now()
    fields: dict[str, Any] = {
        "title": "Seaside villa",
        "city": "Lisbon",
        "property_value": Decimal("450000.00"),
        "ticket_price": Decimal("10.00"),
        "currency": "EUR",
        "total_tickets": 100,
        "status": House.Status.ACTIVE,
        "min_tickets_per_purchase": 1,
        "max_tickets_per_purchase": 10,
        "sales_start_at": now - timedelta(days=1),
        "sales_end_at": now + timedelta(days=30),
    }
    fields.update(overrides)
    return House.objects.create(**fields)


@pytest.fixture
def make_house(db: None) -> Callable[..., House]:
    return create_house


def create_promotion(**overrides: Any) -> Promotion:
    now = timezone.now()
    fields: dict[str, Any] = {
        "code": f"PROMO{next(_codes)}",
        "discount_percent": Decimal("10.00"),
        "valid_from": now - timedelta(days=1),
        "valid_until": now + timedelta(days=1),
    }
    fields.update(overrides)
    return Promotion.objects.create(**fields)


@pytest.fixture
def make_promotion(db: None) -> Callable[..., Promotion]:
    return create_promotion


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
