"""Fixtures for checkout tests: houses on sale, reservations, failpoints, eager retries."""

import uuid
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import AbstractBaseUser

from config.celery import app as celery_app
from core import failpoints
from lottery.models import House
from reservations.models import Reservation
from reservations.services import reserve_tickets
from tests.factories import create_house


@pytest.fixture
def make_house(db: None) -> Callable[..., House]:
    """Checkout tests buy a lot: 1,000 tickets unless a test says otherwise."""
    return lambda **overrides: create_house(**{"total_tickets": 1000, **overrides})


@pytest.fixture
def house(make_house: Callable[..., House]) -> House:
    return make_house()


def reserve(player: AbstractBaseUser, house: House, quantity: int = 1) -> Reservation:
    outcome = reserve_tickets(
        player=player, house_id=house.pk, quantity=quantity, idempotency_key=uuid.uuid4().hex
    )
    return Reservation.objects.get(pk=outcome.data()["id"])


@pytest.fixture
def eager_retry_chain() -> Iterator[None]:
    """Eager tasks follow their whole retry chain (and dead-letter) as a worker would."""
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = True


@pytest.fixture
def failpoints_on(settings: object) -> Iterator[Callable[..., None]]:
    settings.FAILPOINTS_ENABLED = True
    yield failpoints.arm


@pytest.fixture
def no_task_runs() -> Iterator[None]:
    """Tasks are published to the (test) broker and nobody consumes them."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


@pytest.fixture
def switch_to_http_gateway(settings: object) -> Callable[[], None]:
    """Later switch PAYMENT_GATEWAY to http, at a port where nothing listens (127.0.0.1)."""

    def switch() -> None:
        settings.PAYMENT_GATEWAY = "http"
        settings.PAYMENT_SERVICE_URL = "http://127.0.0.1:18197"

    return switch


def checkout_closing_the_house_meanwhile(
    player: AbstractBaseUser,
    reservation: Reservation,
    token: str = "tok_ok",
    **house_changes: object,
) -> Reservation:
    """Start the checkout (the house is on sale), change the house while the payment is
    in flight (default: paused), then run the checkout task: paid, but not issuable."""
    from purchases.services.checkout import start_checkout
    from purchases.tasks import process_checkout

    celery_app.conf.task_always_eager = False
    try:
        start_checkout(player=player, reservation_id=reservation.pk, payment_token=token)
    finally:
        celery_app.conf.task_always_eager = True
    House.objects.filter(pk=reservation.house_id).update(
        **(house_changes or {"status": House.Status.PAUSED})
    )
    process_checkout.delay(str(reservation.pk))
    reservation.refresh_from_db()
    return reservation
