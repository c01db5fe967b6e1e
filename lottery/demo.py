"""Demo houses and a promotion for ``manage.py seed_demo``, created through the services."""

from datetime import timedelta
from decimal import Decimal
from typing import TextIO

from django.utils import timezone

from lottery.models import House, Promotion
from lottery.services import change_house_status, save_house, save_promotion

# title, city, value, ticket price, tickets, participant cap, path of statuses from draft
DEMO_HOUSES = [
    ("Seaside villa in Cascais", "Cascais", "1250000", "25.00", 100_000, None, ["active"]),
    ("Townhouse near the Vondelpark", "Amsterdam", "890000", "10.00", 150_000, 5_000, ["active"]),
    ("Alpine chalet", "Chamonix", "1600000", "50.00", 60_000, None, ["active", "paused"]),
    ("Loft in Kreuzberg", "Berlin", "540000", "5.00", 200_000, None, []),
    ("Farmhouse in Tuscany", "Siena", "720000", "20.00", 50_000, None, ["active", "closed"]),
]


def seed_demo_houses(stdout: TextIO) -> None:
    now = timezone.now()
    for title, city, value, price, tickets, cap, statuses in DEMO_HOUSES:
        if House.objects.filter(title=title).exists():
            continue
        house = save_house(
            house=House(
                title=title,
                description=f"A demo house in {city}.",
                city=city,
                address=f"1 Demo Street, {city}",
                property_value=Decimal(value),
                ticket_price=Decimal(price),
                currency="EUR",
                total_tickets=tickets,
                participant_cap=cap,
                max_tickets_per_purchase=50,
                max_tickets_per_user=500,
                min_participation_percent=10,
                sales_start_at=now - timedelta(days=1),
                sales_end_at=now + timedelta(days=60),
            )
        )
        for status in statuses:
            change_house_status(house_id=house.pk, to_status=status)
        stdout.write(f"house: {title} ({statuses[-1] if statuses else 'draft'})\n")
    if not Promotion.objects.filter(code__iexact="WELCOME10").exists():
        save_promotion(
            promotion=Promotion(
                code="WELCOME10",
                description="10% off your first tickets",
                discount_percent=Decimal("10"),
                valid_from=now - timedelta(days=1),
                valid_until=now + timedelta(days=365),
                max_redemptions=1000,
                per_user_limit=1,
            )
        )
        stdout.write("promotion: WELCOME10\n")
