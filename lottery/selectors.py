"""Reads of players and houses."""

from datetime import UTC
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from core import exceptions as domain
from lottery.models import House

User = get_user_model()


# One fixed statement: /me/ is the cheapest authenticated read and the benchmark's
# ceiling, and compiling the ORM join costs more than running it (~0.9 ms).
_PLAYER_SUMMARY_SQL = """
SELECT u.id, u.username, u.email, coalesce(p.is_verified, false),
       coalesce(p.account_status, 'active'), coalesce(p.notifications_enabled, true),
       u.date_joined
FROM auth_user u LEFT JOIN lottery_playerprofile p ON p.user_id = u.id
WHERE u.id = %s
"""
PLAYER_SUMMARY_FIELDS = (
    "id",
    "username",
    "email",
    "is_verified",
    "account_status",
    "notifications",
    "date_joined",
)


def player_summary(user_id: int) -> dict[str, Any]:
    """What ``GET /me/`` shows; a missing profile reads as unverified."""
    with connection.cursor() as cursor:
        cursor.execute(_PLAYER_SUMMARY_SQL, [user_id])
        row = cursor.fetchone()
    if row is None:
        raise domain.NotFound()
    summary = dict(zip(PLAYER_SUMMARY_FIELDS, row, strict=True))
    # SQLite (embedded mode) has no boolean type and returns naive UTC datetimes from a
    # raw cursor: answer exactly as PostgreSQL does.
    summary["is_verified"] = bool(summary["is_verified"])
    summary["notifications"] = bool(summary["notifications"])
    if timezone.is_naive(summary["date_joined"]):
        summary["date_joined"] = timezone.make_aware(summary["date_joined"], UTC)
    return summary


def player_with_profile(user_id: int) -> AbstractBaseUser:
    user = User.objects.select_related("player_profile").filter(pk=user_id).first()
    if user is None:
        raise domain.NotFound()
    return user


# --- Houses -------------------------------------------------------------------

HOUSE_ORDERINGS = ("sales_end_at", "ticket_price", "created_at")


def visible_houses() -> QuerySet[House]:
    """Houses players may see: never deleted ones, never drafts."""
    return House.objects.filter(deleted_at__isnull=True).exclude(status=House.Status.DRAFT)


def house_list(
    *,
    status: str | None = None,
    city: str | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    ordering: str | None = None,
) -> QuerySet[House]:
    houses = visible_houses()
    if status:
        houses = houses.filter(status=status)
    if city:
        houses = houses.filter(city__iexact=city)
    if min_price is not None:
        houses = houses.filter(ticket_price__gte=min_price)
    if max_price is not None:
        houses = houses.filter(ticket_price__lte=max_price)
    return houses.order_by(ordering or "-created_at", "id")


def visible_house(house_id: int) -> House:
    if not 0 < house_id < 2**63:
        raise domain.NotFound()
    house = visible_houses().filter(pk=house_id).first()
    if house is None:
        raise domain.NotFound()
    return house
