"""The one place tests build houses and promotions: valid rows, on sale now, overridable."""

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from lottery.models import House, Promotion

_titles = itertools.count(1)
_codes = itertools.count(1)


def create_house(**overrides: Any) -> House:
    """An active house on sale since yesterday for 30 days: 100 tickets at 10.00 EUR."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "title": f"House {next(_titles)}",
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


def create_promotion(**overrides: Any) -> Promotion:
    """A 10 % promotion valid from yesterday to tomorrow, for every house."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "code": f"PROMO{next(_codes)}",
        "discount_percent": Decimal("10.00"),
        "valid_from": now - timedelta(days=1),
        "valid_until": now + timedelta(days=1),
    }
    fields.update(overrides)
    return Promotion.objects.create(**fields)
