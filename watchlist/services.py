"""Watchlist writes. Every path checks the player first, as reserving does (fails closed)."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from core import exceptions as domain
from lottery import selectors as lottery_selectors
from lottery.services import eligible_player
from watchlist.models import WatchlistItem

_WATCH_SQL = """
INSERT INTO watchlist_watchlistitem (user_id, house_id, created_at)
VALUES (%s, %s, %s)
ON CONFLICT (user_id, house_id) DO NOTHING
RETURNING id
"""


def watch_house(
    *, player: AbstractBaseUser | AnonymousUser, house_id: int
) -> tuple[WatchlistItem, bool]:
    """Watch a visible house; returns the item and whether this call added it.

    One ``INSERT ... ON CONFLICT DO NOTHING``: concurrent identical requests add
    one row, and exactly the request whose insert returned a row says "created".
    """
    eligible_player(player)
    house = lottery_selectors.visible_house(house_id)  # deleted, draft, unknown: 404
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_WATCH_SQL, [player.pk, house.pk, timezone.now()])
            created = cursor.fetchone() is not None
        item = WatchlistItem.objects.get(user_id=player.pk, house_id=house.pk)
    item.house = house
    return item, created


def unwatch_house(*, player: AbstractBaseUser | AnonymousUser, house_id: int) -> None:
    """Stop watching; a house not watched is 404."""
    eligible_player(player)
    removed, _ = WatchlistItem.objects.filter(user_id=player.pk, house_id=house_id).delete()
    if not removed:
        raise domain.NotFound()
