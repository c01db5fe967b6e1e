"""Reads for the staff dashboard: a fixed handful of aggregate queries, whatever the data."""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from core import metrics
from core.models import DeadLetter
from draws.models import Draw
from lottery.models import House
from payments.models import Refund
from reservations.models import Reservation

CLOSING_SOON = timedelta(hours=24)
# The gauge that reservations' sync_inventory sets per house: tickets Redis was off by.
DRIFT_GAUGE = "inventory_drift_tickets"
_DRIFT_SERIES = re.compile(rf'^{DRIFT_GAUGE}\{{house="(\d+)"\}}$')


@dataclass(frozen=True)
class SalesWindow:
    """Completed purchases checked out in ``[since, until)``: how many, how much per currency."""

    since: datetime
    until: datetime
    purchases: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class InventoryDrift:
    """What the last ``sync_inventory`` found: houses on sale whose Redis count was off.

    ``tickets`` is the sum of |drift| over those houses. The sync rebuilt them
    from the database right after measuring, so this is history, not a live fault.
    """

    house_ids: tuple[int, ...] = ()
    tickets: int = 0


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    sales_today: SalesWindow
    sales_this_week: SalesWindow
    houses_closing_soon: int
    closing_until: datetime
    draws_scheduled: int
    draws_waiting_entropy: int
    refunds_needing_attention: int
    dead_letters_open: int
    inventory_drift: InventoryDrift


def dashboard(*, now: datetime | None = None) -> Dashboard:
    """Everything the admin index shows, in at most six queries (and one metrics read)."""
    now = now or timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())  # Monday
    sales_today, sales_this_week = _sales(today=today, week=week, until=now)
    draws = Draw.objects.filter(
        status__in=(Draw.Status.SCHEDULED, Draw.Status.WAITING_ENTROPY)
    ).aggregate(
        scheduled=Count("pk", filter=Q(status=Draw.Status.SCHEDULED)),
        waiting_entropy=Count("pk", filter=Q(status=Draw.Status.WAITING_ENTROPY)),
    )
    return Dashboard(
        now=now,
        sales_today=sales_today,
        sales_this_week=sales_this_week,
        houses_closing_soon=houses_closing_between(since=now, until=now + CLOSING_SOON).count(),
        closing_until=now + CLOSING_SOON,
        draws_scheduled=draws["scheduled"],
        draws_waiting_entropy=draws["waiting_entropy"],
        refunds_needing_attention=Refund.objects.filter(
            status=Refund.Status.NEEDS_ATTENTION
        ).count(),
        dead_letters_open=DeadLetter.objects.filter(status=DeadLetter.Status.OPEN).count(),
        inventory_drift=inventory_drift(),
    )


def houses_closing_between(*, since: datetime, until: datetime) -> QuerySet[House]:
    """Active, not deleted houses whose sales end in ``[since, until)``."""
    return House.objects.filter(
        status=House.Status.ACTIVE,
        deleted_at__isnull=True,
        sales_end_at__gte=since,
        sales_end_at__lt=until,
    )


def _sales(*, today: datetime, week: datetime, until: datetime) -> tuple[SalesWindow, SalesWindow]:
    """One grouped query: per currency, today's and this week's completed purchases."""
    in_today = Q(processed_at__gte=today)
    rows = (
        Reservation.objects.filter(
            status=Reservation.Status.COMPLETED, processed_at__gte=week, processed_at__lt=until
        )
        .values("currency")
        .annotate(
            today_count=Count("pk", filter=in_today),
            today_amount=Sum("total_price", filter=in_today),
            week_count=Count("pk"),
            week_amount=Sum("total_price"),
        )
        .order_by("currency")
    )
    today_amounts: dict[str, Decimal] = {}
    week_amounts: dict[str, Decimal] = {}
    today_count = week_count = 0
    for row in rows:
        if row["today_count"]:
            today_amounts[row["currency"]] = row["today_amount"]
            today_count += row["today_count"]
        week_amounts[row["currency"]] = row["week_amount"]
        week_count += row["week_count"]
    return (
        SalesWindow(since=today, until=until, purchases=today_count, amounts=today_amounts),
        SalesWindow(since=week, until=until, purchases=week_count, amounts=week_amounts),
    )


def inventory_drift() -> InventoryDrift:
    """Read the drift gauges ``sync_inventory`` leaves in the metrics; compute nothing.

    Only houses still active count: a gauge outlives the house's sales. One query,
    and none when no gauge shows drift.
    """
    _, gauges = metrics.snapshot()
    drifting: dict[int, int] = {}
    for series, value in gauges.items():
        match = _DRIFT_SERIES.match(series)
        if match and value:
            drifting[int(match.group(1))] = abs(int(value))
    on_sale = set(
        House.objects.filter(
            pk__in=drifting, status=House.Status.ACTIVE, deleted_at__isnull=True
        ).values_list("pk", flat=True)
    )
    return InventoryDrift(
        house_ids=tuple(sorted(on_sale)), tickets=sum(drifting[pk] for pk in on_sale)
    )
