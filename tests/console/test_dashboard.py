"""The admin index is the staff dashboard: right numbers, filtered links, constant queries."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console import selectors
from core import metrics
from core.models import DeadLetter
from draws.models import Draw
from lottery.models import House
from payments.models import Payment, Refund
from reservations import inventory
from reservations.models import Reservation
from reservations.services import sync_inventory
from tests.factories import create_house

pytestmark = pytest.mark.django_db

User = get_user_model()
# A Wednesday noon: "today" starts at 00:00, "this week" on Monday the 23rd.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def purchase(
    house: House,
    buyer: User,
    *,
    at: datetime,
    quantity: int = 1,
    status: str = Reservation.Status.COMPLETED,
) -> Reservation:
    """A reservation row checked out at ``at`` (the dashboard only reads these rows)."""
    return Reservation.objects.create(
        house=house,
        user=buyer,
        quantity=quantity,
        unit_price=house.ticket_price,
        total_price=house.ticket_price * quantity,
        currency=house.currency,
        status=status,
        expires_at=at + timedelta(minutes=10),
        processed_at=at,
    )


def refund_row(reservation: Reservation, status: str) -> Refund:
    payment = Payment.objects.create(
        reservation=reservation,
        amount=reservation.total_price,
        currency=reservation.currency,
        gateway="sandbox",
        payment_token="tok_ok",
        idempotency_key=uuid.uuid4().hex,
        status=Payment.Status.SUCCEEDED,
    )
    return Refund.objects.create(
        payment=payment, amount=payment.amount, reason="test", status=status
    )


def test_sales_today_and_this_week_count_completed_purchases_per_currency(player) -> None:
    eur = create_house(ticket_price=Decimal("10.00"))
    usd = create_house(ticket_price=Decimal("7.50"), currency="USD")
    purchase(eur, player, at=NOW - timedelta(hours=1), quantity=2)  # today, 20.00
    purchase(eur, player, at=NOW - timedelta(hours=11))  # today 01:00, 10.00
    purchase(usd, player, at=NOW - timedelta(hours=2), quantity=4)  # today, USD 30.00
    purchase(eur, player, at=datetime(2026, 11, 23, 0, 0, tzinfo=UTC), quantity=5)  # Monday
    purchase(eur, player, at=datetime(2026, 11, 22, 23, 59, tzinfo=UTC))  # last Sunday
    purchase(eur, player, at=NOW - timedelta(hours=1), status=Reservation.Status.PENDING)
    purchase(eur, player, at=NOW - timedelta(hours=1), status=Reservation.Status.REFUNDED)

    data = selectors.dashboard(now=NOW)

    assert data.sales_today.since == datetime(2026, 11, 25, tzinfo=UTC)
    assert data.sales_today.purchases == 3
    assert data.sales_today.amounts == {"EUR": Decimal("30.00"), "USD": Decimal("30.00")}
    assert data.sales_this_week.since == datetime(2026, 11, 23, tzinfo=UTC)
    assert data.sales_this_week.purchases == 4
    assert data.sales_this_week.amounts == {"EUR": Decimal("80.00"), "USD": Decimal("30.00")}


def test_houses_closing_in_24_hours_are_the_active_undeleted_ones_ending_within_a_day() -> None:
    def ending_in(delta: timedelta, **fields: object) -> House:
        return create_house(
            sales_start_at=NOW - timedelta(days=3), sales_end_at=NOW + delta, **fields
        )

    closing = [ending_in(timedelta(hours=1)), ending_in(timedelta(hours=23, minutes=59))]
    ending_in(timedelta(hours=25))  # later
    ending_in(timedelta(hours=-1))  # already ended
    ending_in(timedelta(hours=2), status=House.Status.PAUSED)
    ending_in(timedelta(hours=2), deleted_at=NOW)

    data = selectors.dashboard(now=NOW)

    assert data.houses_closing_soon == 2
    assert set(selectors.houses_closing_between(since=NOW, until=data.closing_until)) == set(
        closing
    )


def test_waiting_draws_refunds_needing_attention_and_open_dead_letters_are_counted(
    player,
) -> None:
    for status in (
        Draw.Status.SCHEDULED,
        Draw.Status.WAITING_ENTROPY,
        Draw.Status.WAITING_ENTROPY,
        Draw.Status.RUNNING,
        Draw.Status.FAILED,
    ):
        Draw.objects.create(house=create_house(status=House.Status.CLOSED), status=status)
    house = create_house()
    for status in (Refund.Status.NEEDS_ATTENTION, Refund.Status.FAILED, Refund.Status.SUCCEEDED):
        refund_row(purchase(house, player, at=NOW, status=Reservation.Status.REFUNDED), status)
    for status in (DeadLetter.Status.OPEN, DeadLetter.Status.OPEN, DeadLetter.Status.RESOLVED):
        DeadLetter.objects.create(task_name="t", exception_type="E", last_error="x", status=status)

    data = selectors.dashboard(now=NOW)

    assert (data.draws_scheduled, data.draws_waiting_entropy) == (1, 2)
    assert data.refunds_needing_attention == 1
    assert data.dead_letters_open == 2


def test_drift_is_read_from_the_gauges_sync_inventory_leaves() -> None:
    steady, drifted = create_house(total_tickets=100), create_house(total_tickets=100)
    sync_inventory()  # builds the missing hashes (a missing hash counts as drift)
    sync_inventory()
    assert selectors.inventory_drift() == selectors.InventoryDrift()
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    client.hset(inventory.house_key(drifted.pk), "available", 60)  # Redis lost track of 40
    client.close()
    assert selectors.inventory_drift().house_ids == ()  # read, not computed: no sync yet

    sync_inventory()
    drift = selectors.inventory_drift()

    assert drift.house_ids == (drifted.pk,)
    assert drift.tickets == 40
    assert steady.pk not in drift.house_ids


def test_drift_of_a_house_no_longer_on_sale_is_not_shown() -> None:
    closed = create_house(status=House.Status.CLOSED)
    metrics.set_gauge(selectors.DRIFT_GAUGE, 5, house=str(closed.pk))  # from its last sync

    assert selectors.inventory_drift() == selectors.InventoryDrift()


def build_sales(player, count: int) -> None:
    now = timezone.now()
    for _ in range(count):
        house = create_house(sales_end_at=now + timedelta(hours=3))
        purchase(house, player, at=now)
        Draw.objects.create(house=create_house(status=House.Status.CLOSED))
        refund_row(
            purchase(house, player, at=now, status=Reservation.Status.REFUNDED),
            Refund.Status.NEEDS_ATTENTION,
        )
        DeadLetter.objects.create(task_name="t", exception_type="E", last_error="x")
        metrics.set_gauge(selectors.DRIFT_GAUGE, 3, house=str(house.pk))


def test_dashboard_selector_takes_the_same_queries_for_1_and_20_houses_and_purchases(
    player, django_assert_num_queries
) -> None:
    build_sales(player, 1)
    with CaptureQueriesContext(connection) as one:
        assert selectors.dashboard().sales_today.purchases == 1
    assert len(one) == 6  # sales, houses closing, draws, refunds, dead letters, drift houses

    build_sales(player, 19)
    with django_assert_num_queries(len(one)):
        data = selectors.dashboard()
    assert data.sales_today.purchases == 20
    assert data.houses_closing_soon == 20
    assert data.draws_scheduled == 20
    assert data.refunds_needing_attention == 20
    assert data.dead_letters_open == 20
    assert len(data.inventory_drift.house_ids) == 20


def test_admin_index_takes_the_same_queries_for_1_and_20_houses_and_purchases(
    player, staff_client, django_assert_num_queries
) -> None:
    build_sales(player, 1)
    staff_client.get(reverse("admin:index"))  # the session and content types are warm
    with CaptureQueriesContext(connection) as one:
        assert staff_client.get(reverse("admin:index")).status_code == 200

    build_sales(player, 19)
    with django_assert_num_queries(len(one)):
        page = staff_client.get(reverse("admin:index"))
    assert 'id="card-sales_today"' in page.content.decode()


def card(html: str, key: str) -> str:
    match = re.search(rf'<div class="console-card[^"]*" id="card-{key}".*?</div>', html, re.S)
    assert match, f"no {key} card"
    return match.group(0)


def card_link(html: str, key: str) -> str:
    return unescape(re.search(r'href="([^"]+)"', card(html, key)).group(1))


def test_admin_index_shows_every_card_above_the_app_list(player, staff_client) -> None:
    house = create_house(sales_end_at=timezone.now() + timedelta(hours=2))
    purchase(house, player, at=timezone.now(), quantity=3)

    html = staff_client.get(reverse("admin:index")).content.decode()

    for key in ("sales_today", "sales_week", "closing", "draws", "refunds", "dead_letters"):
        assert card_link(html, key)
    assert "1 purchase" in card(html, "sales_today")
    assert "EUR 30.00" in card(html, "sales_today")
    assert ">1</a>" in card(html, "closing")
    assert "none" in card(html, "drift")
    assert html.index('id="console-dashboard"') < html.index('id="content-main"')
    assert 'class="app-lottery module' in html  # Django's app list is still there


def listed_ids(client: Client, url: str) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200, url
    assert "?e=1" not in response.request["QUERY_STRING"]  # the filter was accepted
    results = response.content.decode().split('id="result_list"', 1)
    rows = results[1] if len(results) == 2 else ""  # no table: nothing listed
    return set(re.findall(r'href="/admin/\w+/\w+/([^/"]+)/change/', rows))


def test_each_card_links_to_its_list_filtered_to_what_it_counts(player, staff_client) -> None:
    now = timezone.now()
    closing = create_house(sales_end_at=now + timedelta(hours=2))
    later = create_house(sales_end_at=now + timedelta(days=3))
    sold = purchase(later, player, at=now)
    old = purchase(later, player, at=now - timedelta(days=8))
    pending = purchase(later, player, at=now, status=Reservation.Status.PENDING)
    waiting = Draw.objects.create(
        house=create_house(status=House.Status.CLOSED), status=Draw.Status.WAITING_ENTROPY
    )
    Draw.objects.create(house=create_house(status=House.Status.CLOSED), status="running")
    stuck = refund_row(
        purchase(later, player, at=now, status="refunded"), Refund.Status.NEEDS_ATTENTION
    )
    refund_row(purchase(later, player, at=now, status="refunded"), Refund.Status.SUCCEEDED)
    open_letter = DeadLetter.objects.create(task_name="t", exception_type="E", last_error="x")
    DeadLetter.objects.create(task_name="t", exception_type="E", last_error="x", status="resolved")
    metrics.set_gauge(selectors.DRIFT_GAUGE, -4, house=str(later.pk))
    metrics.set_gauge(selectors.DRIFT_GAUGE, 0, house=str(closing.pk))

    html = staff_client.get(reverse("admin:index")).content.decode()

    today = listed_ids(staff_client, card_link(html, "sales_today"))
    assert str(sold.pk) in today and str(old.pk) not in today and str(pending.pk) not in today
    assert listed_ids(staff_client, card_link(html, "closing")) == {str(closing.pk)}
    assert listed_ids(staff_client, card_link(html, "draws")) == {str(waiting.pk)}
    assert listed_ids(staff_client, card_link(html, "refunds")) == {str(stuck.pk)}
    assert listed_ids(staff_client, card_link(html, "dead_letters")) == {str(open_letter.pk)}
    assert listed_ids(staff_client, card_link(html, "drift")) == {str(later.pk)}
    assert "4 tickets off" in card(html, "drift")


def test_staff_in_no_group_sees_the_cards_but_not_the_lists_behind_them(make_player) -> None:
    client = Client()
    client.force_login(make_player(is_staff=True))

    html = client.get(reverse("admin:index")).content.decode()

    assert 'id="card-refunds"' in html
    assert client.get(card_link(html, "refunds")).status_code == 403
