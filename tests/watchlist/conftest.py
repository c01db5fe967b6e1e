from typing import Any

import pytest

from reservations import inventory


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def closed_breaker() -> None:
    """Each test starts with Redis trusted again (the breaker is per process)."""
    inventory.breaker.reset()
