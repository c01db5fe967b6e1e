"""When a house is on sale: the one rule, in the three forms the code needs.

On sale = ``active``, not soft-deleted, and ``now`` inside ``[sales_start_at,
sales_end_at)``. Reserve (its SQL statement and the ORM path), checkout and the
selectors all ask here; ``tests/lottery/test_on_sale.py`` checks that the three
forms agree at every boundary.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from lottery.models import House, HouseStatus

ACTIVE = HouseStatus.ACTIVE.value


def on_sale_q(now: datetime, *, prefix: str = "") -> Q:
    """A filter for houses on sale (``prefix="house__"`` from a row pointing at a house)."""
    return Q(
        **{
            f"{prefix}status": ACTIVE,
            f"{prefix}deleted_at__isnull": True,
            f"{prefix}sales_start_at__lte": now,
            f"{prefix}sales_end_at__gt": now,
        }
    )


def is_on_sale(house: House, now: datetime) -> bool:
    """The same rule on a loaded row."""
    return (
        house.status == ACTIVE
        and house.deleted_at is None
        and house.sales_start_at <= now < house.sales_end_at
    )


def on_sale_sql(*, house: str, now: str) -> str:
    """The same rule as an SQL condition on the house row aliased ``house``, at ``now``."""
    return (
        f"({house}.status = '{ACTIVE}' AND {house}.deleted_at IS NULL"
        f" AND {house}.sales_start_at <= {now} AND {now} < {house}.sales_end_at)"
    )
