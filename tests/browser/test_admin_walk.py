"""A staff member's walk through the admin in a real browser, from login to the audit trail.

``SAVE_SCREENSHOTS=1`` writes the pictures the README shows to ``docs/screenshots/``;
otherwise they go to the test's temporary directory (taken all the same).
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, expect

from core.models import AuditEntry
from lottery.models import House
from payments.models import Refund
from purchases.services.checkout import start_checkout
from reservations.models import Reservation
from tests.factories import create_house
from tests.purchases.conftest import reserve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

User = get_user_model()
PASSWORD = "walk-the-admin-password"
REPO_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
REFUND_REASON = "Buyer paid twice by mistake (support ticket 4711)"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        REPO_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return REPO_SCREENSHOTS
    return tmp_path


def completed_purchase(buyer: User) -> Reservation:
    """Three tickets of an existing house, paid through the sandbox gateway and issued."""
    house = create_house(title="Casa do Rio", city="Porto")
    reservation = reserve(buyer, house, 3)
    start_checkout(player=buyer, reservation_id=reservation.pk, payment_token="tok_ok")
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.COMPLETED
    return reservation


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#console-dashboard")).to_be_visible()


def add_house(page: Page, base: str, screenshots: Path) -> House:
    """Fill the add form as staff do; sales end in six hours, so it is closing soon."""
    now = timezone.now().replace(microsecond=0)
    starts, ends = now - timedelta(hours=1), now + timedelta(hours=6)
    page.goto(f"{base}/admin/lottery/house/add/")
    page.fill("#id_title", "Villa Walkthrough")
    page.fill("#id_city", "Lisbon")
    page.fill("#id_address", "Rua das Flores 12")
    page.fill("#id_property_value", "520000.00")
    page.fill("#id_ticket_price", "25.00")
    page.fill("#id_total_tickets", "20000")
    page.fill("#id_sales_start_at_0", starts.strftime("%Y-%m-%d"))
    page.fill("#id_sales_start_at_1", starts.strftime("%H:%M:%S"))
    page.fill("#id_sales_end_at_0", ends.strftime("%Y-%m-%d"))
    page.fill("#id_sales_end_at_1", ends.strftime("%H:%M:%S"))
    page.screenshot(path=screenshots / "house_add.png", full_page=True)
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("Villa Walkthrough")
    return House.objects.get(title="Villa Walkthrough")


def run_action(page: Page, selected: str, action: str) -> None:
    """Tick one row of the changelist, pick the action, press Go."""
    page.check(f"input[name=_selected_action][value='{selected}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def test_staff_creates_and_activates_a_house_reads_the_dashboard_refunds_and_finds_the_audit(
    live_server, page: Page, make_player, screenshots: Path
) -> None:
    base = live_server.url
    User.objects.create_superuser("walker", "walker@example.com", PASSWORD)
    purchase = completed_purchase(make_player())

    log_in(page, base, "walker")
    house = add_house(page, base, screenshots)
    assert house.status == House.Status.DRAFT

    page.goto(f"{base}/admin/lottery/house/?status__exact=draft")
    run_action(page, str(house.pk), "make_active")
    expect(page.locator("ul.messagelist")).to_contain_text("now active")
    house.refresh_from_db()
    assert house.status == House.Status.ACTIVE
    assert house.draw_commitment  # activation commits to the draw seed

    page.goto(f"{base}/admin/")
    cards = page.locator("#console-dashboard .console-card")
    expect(cards).to_have_count(7)
    expect(page.locator("#card-sales_today .value")).to_have_text("1 purchase")
    expect(page.locator("#card-sales_today .detail")).to_have_text("EUR 30.00")
    expect(page.locator("#card-closing .value")).to_have_text("1")  # the new house, in 6 h
    for key in ("draws", "refunds", "dead_letters", "drift"):
        expect(page.locator(f"#card-{key}")).to_be_visible()
    expect(page.locator("#content-main .app-lottery")).to_be_visible()  # the app list stays
    page.screenshot(path=screenshots / "dashboard.png")

    page.click("#card-sales_today .value a")  # today's completed purchases
    expect(page.locator("#result_list")).to_contain_text(str(purchase.pk))
    run_action(page, str(purchase.pk), "refund_purchases")
    page.fill("#console-action-form textarea[name=reason]", REFUND_REASON)
    page.screenshot(path=screenshots / "refund.png")
    page.click("#console-action-form input[type=submit]")
    expect(page.locator("ul.messagelist")).to_contain_text("1 refund(s) under way")
    refund = Refund.objects.select_related("payment").get(payment__reservation=purchase)
    assert refund.reason == REFUND_REASON

    page.goto(f"{base}/admin/core/auditentry/")
    listing = page.locator("#result_list")
    for action in ("house_created", "house_activated", "purchase_refunded"):
        expect(listing).to_contain_text(action)
    expect(listing).to_contain_text(REFUND_REASON)
    page.screenshot(path=screenshots / "audit.png")

    walker = User.objects.get(username="walker")
    entries = {(e.action, e.object_id) for e in AuditEntry.objects.filter(actor=walker)}
    assert {
        ("house_created", str(house.pk)),
        ("house_activated", str(house.pk)),
        ("purchase_refunded", str(refund.payment.pk)),  # the audit names the payment
    } <= entries
    for name in ("house_add", "dashboard", "refund", "audit"):
        assert (screenshots / f"{name}.png").stat().st_size > 0
