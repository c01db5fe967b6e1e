"""Watchlist reads."""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from lottery import selectors as lottery_selectors
from lottery.models import House
from lottery.services import eligible_player
from reservations.models import Reservation
from watchlist.models import WatchlistItem


def watchlist_of(player: AbstractBaseUser) -> QuerySet[WatchlistItem]:
    """The player's watched houses still visible to players, newest first, house joined.

    Checks the player first (fails closed, like every watchlist path).
    """
    eligible_player(player)
    visible = lottery_selectors.visible_houses()
    return (
        WatchlistItem.objects.filter(user_id=player.pk, house__in=visible)
        .select_related("house")
        .order_by("-created_at", "-id")
    )


def watcher_ids(house_id: int) -> list[int]:
    return list(
        WatchlistItem.objects.filter(house_id=house_id)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


def houses_closing_between(start: object, end: object) -> QuerySet[House]:
    """Active houses whose sales end inside ``[start, end)``."""
    return lottery_selectors.visible_houses().filter(
        status=House.Status.ACTIVE, sales_end_at__gte=start, sales_end_at__lt=end
    )


def reservation_prices(reservation_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{reservation id (str): {"total_price", "currency"}}`` in one read; unknown ids left out."""
    return {
        str(row.pop("pk")): row
        for row in Reservation.objects.filter(pk__in=set(reservation_ids)).values(
            "pk", "total_price", "currency"
        )
    }
