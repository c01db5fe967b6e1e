"""The admin index as the staff dashboard: cards of numbers, each linking to its filtered list.

``install(admin.site)`` (from ``ConsoleConfig.ready``) wraps the site's index view so
its context carries ``dashboard_cards``; ``templates/admin/index.html`` draws them
above Django's app list. Every staff member sees the cards; the lists they link to
enforce their own permissions.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import wraps
from urllib.parse import urlencode

from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.formats import number_format

from console import selectors
from core.models import DeadLetter
from draws.models import Draw
from lottery.models import House
from payments.models import Refund
from reservations.models import Reservation


@dataclass(frozen=True)
class Card:
    key: str
    title: str
    value: str
    detail: str
    url: str | None
    alert: bool = False  # something waits for staff


def changelist_url(model: type, **filters: object) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    query = {
        name: value.isoformat() if isinstance(value, datetime) else str(value)
        for name, value in filters.items()
    }
    return f"{url}?{urlencode(query)}" if query else url


def _money(amounts: dict[str, Decimal]) -> str:
    if not amounts:
        return "nothing sold"
    return ", ".join(
        f"{currency} {number_format(amount, 2, force_grouping=True)}"
        for currency, amount in amounts.items()
    )


def _sales_card(key: str, title: str, sales: selectors.SalesWindow) -> Card:
    return Card(
        key=key,
        title=title,
        value=f"{sales.purchases} purchase{'' if sales.purchases == 1 else 's'}",
        detail=_money(sales.amounts),
        url=changelist_url(
            Reservation,
            status__exact=Reservation.Status.COMPLETED,
            processed_at__gte=sales.since,
        ),
    )


def _drift_card(drift: selectors.InventoryDrift) -> Card:
    title = "Redis inventory drift"
    if not drift.house_ids:
        return Card("drift", title, "none", "at the last inventory sync", None)
    return Card(
        key="drift",
        title=title,
        value=f"{len(drift.house_ids)} house{'' if len(drift.house_ids) == 1 else 's'}",
        detail=f"{drift.tickets} tickets off at the last inventory sync (then rebuilt)",
        url=changelist_url(House, id__in=",".join(map(str, drift.house_ids))),
        alert=True,
    )


def cards(data: selectors.Dashboard) -> list[Card]:
    draws_waiting = data.draws_waiting_entropy + data.draws_scheduled
    return [
        _sales_card("sales_today", "Sales today", data.sales_today),
        _sales_card("sales_week", "Sales this week", data.sales_this_week),
        Card(
            key="closing",
            title="Closing within 24 h",
            value=str(data.houses_closing_soon),
            detail="active houses whose sales end by "
            + data.closing_until.strftime("%Y-%m-%d %H:%M %Z"),
            url=changelist_url(
                House,
                status__exact=House.Status.ACTIVE,
                deleted_at__isnull="True",
                sales_end_at__gte=data.now,
                sales_end_at__lt=data.closing_until,
            ),
        ),
        Card(
            key="draws",
            title="Draws waiting",
            value=str(draws_waiting),
            detail=f"{data.draws_waiting_entropy} for entropy, {data.draws_scheduled} scheduled",
            url=changelist_url(
                Draw, status__in=f"{Draw.Status.WAITING_ENTROPY},{Draw.Status.SCHEDULED}"
            ),
            alert=bool(data.draws_waiting_entropy),
        ),
        Card(
            key="refunds",
            title="Refunds needing attention",
            value=str(data.refunds_needing_attention),
            detail="retries exhausted: see the last error",
            url=changelist_url(Refund, status__exact=Refund.Status.NEEDS_ATTENTION),
            alert=bool(data.refunds_needing_attention),
        ),
        Card(
            key="dead_letters",
            title="Dead letters open",
            value=str(data.dead_letters_open),
            detail="tasks that gave up: inspect, then replay or discard",
            url=changelist_url(DeadLetter, status__exact=DeadLetter.Status.OPEN),
            alert=bool(data.dead_letters_open),
        ),
        _drift_card(data.inventory_drift),
    ]


IndexView = Callable[..., HttpResponse]


def with_dashboard(index: IndexView) -> IndexView:
    """The admin index view, with the dashboard cards in its context."""

    @wraps(index)
    def dashboard_index(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        context = {"dashboard_cards": cards(selectors.dashboard())}
        return index(request, extra_context={**context, **(extra_context or {})})

    dashboard_index.with_dashboard = True
    return dashboard_index


def install(site: AdminSite) -> None:
    """Make ``site``'s index the dashboard (before its URLs are built; idempotent)."""
    if not getattr(site.index, "with_dashboard", False):
        site.index = with_dashboard(site.index)
