from collections.abc import Callable, Iterator
from typing import Any

import pytest

from config.celery import app as celery_app
from reservations import inventory


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def closed_breaker() -> None:
    """Each test starts with Redis trusted again (the breaker is per process)."""
    inventory.breaker.reset()


@pytest.fixture
def make_person(make_player: Callable[..., object]) -> Callable[..., object]:
    """A verified player with an email address."""

    def make(**kwargs: object) -> object:
        user = make_player(**kwargs)
        user.email = f"{user.username}@example.test"
        user.save(update_fields=["email"])
        return user

    return make


@pytest.fixture
def eager_retry_chain() -> Iterator[None]:
    """Eager tasks follow their whole retry chain (and dead-letter) as a worker would."""
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = True
