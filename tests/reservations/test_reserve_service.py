import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from core import exceptions as domain
from lottery.models import House, HouseParticipant, Promotion, PromotionRedemption
from reservations.models import Reservation
from reservations.services import reserve_tickets
from tests.reservations.conftest import synced


def test_reserve_holds_tickets_and_counts_the_participant(player, make_house) -> None:
    house = make_house(total_tickets=10)
    outcome = reserve_tickets(player=player, house_id=house.pk, quantity=3)
    body = json.loads(outcome.body)
    assert outcome.status == 201
    assert body["status"] == "pending" and body["quantity"] == 3
    assert body["total_price"] == "30.00" and body["unit_price"] == "10.00"
    house.refresh_from_db()
    assert (house.tickets_reserved, house.participants_count) == (3, 1)
    assert HouseParticipant.objects.get(house=house, user=player).tickets_held == 3
    assert Reservation.objects.get(pk=body["id"]).expires_at.isoformat().startswith(
        body["expires_at"][:19]
    )
