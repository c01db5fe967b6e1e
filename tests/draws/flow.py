"""Helpers for the Django-side draw tests: activated houses, real purchases, closing."""

import json
import uuid
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework.test import APIClient

from draws.models import Draw
from lottery.models import House
from lottery.services import change_house_status
from purchases.services.checkout import start_checkout
from reservations.models import Reservation
from reservations.services import reserve_tickets
from tests.factories import create_house

ENTROPY = "5f" * 32


def activated_house(**overrides: Any) -> House:
    """A house activated through the service, so it carries its seed and commitment."""
    house = create_house(**{"status": House.Status.DRAFT, **overrides})
    return change_house_status(house_id=house.pk, to_status=House.Status.ACTIVE)


def buy(
    player: AbstractBaseUser, house: House, quantity: int = 1, token: str = "tok_ok"
) -> Reservation:
    """Reserve and pay; with eager tasks the checkout completes before this returns."""
    outcome = reserve_tickets(
        player=player, house_id=house.pk, quantity=quantity, idempotency_key=uuid.uuid4().hex
    )
    reservation_id = outcome.data()["id"]
    start_checkout(player=player, reservation_id=reservation_id, payment_token=token)
    return Reservation.objects.get(pk=reservation_id)


def end_sales(house: House) -> None:
    """The sales end date has passed."""
    House.objects.filter(pk=house.pk).update(sales_end_at=timezone.now() - timedelta(seconds=1))


def live_draw(house: House) -> Draw:
    return Draw.objects.exclude(status=Draw.Status.SUPERSEDED).get(house=house)


def documents(client: APIClient, draw_id: int) -> tuple[dict, dict]:
    """The two published documents, as a player downloads them."""
    draw = client.get(f"/api/v1/draws/{draw_id}/")
    assert draw.status_code == 200, draw.content
    tickets = client.get(f"/api/v1/draws/{draw_id}/tickets/")
    assert tickets.status_code == 200
    return draw.json(), json.loads(b"".join(tickets.streaming_content))
