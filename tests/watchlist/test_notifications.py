"""Notification emails: one per (event, recipient) however often the relay delivers an event.

Events come from the real services (checkout, refunds) where they are cheap to
reach, and are emitted with the draws' payload shape where a full draw would
only slow the test down. "The relay runs twice" is the at-least-once case: a
relay that crashed after the handlers ran but before it recorded them, so every
handler is called again for the same event.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from core import outbox
from core.models import DeadLetter, OutboxDelivery, OutboxEvent
from lottery.models import House, PlayerProfile
from purchases.models import Ticket
from purchases.services.refunds import refund_purchase
from tests.conftest import client_for
from tests.watchlist.helpers import broker_down, buy, inbox
from tests.watchlist.smtp_server import SmtpServer, closed_port
from watchlist import notifications
from watchlist.models import NotificationDelivery, WatchlistItem
from watchlist.tasks import send_notification

pytestmark = pytest.mark.django_db(transaction=True)

Kind = NotificationDelivery.Kind


def relay_twice() -> None:
    """Run the relay, then make it deliver every event again (as after a crash) and rerun."""
    call_command("relay_outbox")
    OutboxDelivery.objects.all().delete()
    OutboxEvent.objects.update(delivered_at=None, available_at=timezone.now())
    call_command("relay_outbox")


def emit(event_type: str, payload: dict) -> OutboxEvent:
    with transaction.atomic():
        return outbox.emit(event_type, payload)


def watch(user: object, house: House) -> None:
    WatchlistItem.objects.create(user=user, house=house)


def sent_to(kind: str) -> list[str]:
    return sorted(
        NotificationDelivery.objects.filter(kind=kind, status="sent").values_list(
            "email", flat=True
        )
    )


def test_a_purchase_emails_the_buyer_once_with_text_and_html(make_person, make_house) -> None:
    buyer = make_person()
    house = make_house(title="Villa Sol")
    buy(buyer, house, 3)
    relay_twice()
    [message] = inbox(buyer.email)
    assert message.subject == "Your tickets for Villa Sol"
    assert "1, 2, 3" in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html" and "<strong>1, 2, 3</strong>" in html
    assert sent_to(Kind.PURCHASE_COMPLETED) == [buyer.email]


def test_a_refund_emails_the_buyer_once(make_person, make_house) -> None:
    buyer = make_person()
    reservation = buy(buyer, make_house(title="Casa Azul"), 2)
    refund_purchase(reservation=reservation.pk, reason="staff")
    relay_twice()
    [message] = [m for m in inbox(buyer.email) if "refund" in m.subject]
    assert message.subject == "Your refund for Casa Azul"
    assert "20.00 EUR" in message.body
    assert sent_to(Kind.PURCHASE_REFUNDED) == [buyer.email]


def test_selling_out_tells_each_watcher_once(make_person, make_house) -> None:
    house = make_house(total_tickets=2, title="Last Two")
    watchers = [make_person(), make_person()]
    for watcher in watchers:
        watch(watcher, house)
    buy(make_person(), house, 1)
    assert sent_to(Kind.HOUSE_SOLD_OUT) == []
    buy(make_person(), house, 1)
    relay_twice()
    assert sent_to(Kind.HOUSE_SOLD_OUT) == sorted(w.email for w in watchers)
    for watcher in watchers:
        [message] = inbox(watcher.email)
        assert message.subject == "Last Two is sold out"
    assert OutboxEvent.objects.filter(event_type="house.sold_out").count() == 1


def test_a_house_closing_within_24_hours_tells_its_watchers_once(make_person, make_house) -> None:
    closing = make_house(sales_end_at=timezone.now() + timedelta(hours=5), title="Soon")
    later = make_house(sales_end_at=timezone.now() + timedelta(days=3))
    watcher = make_person()
    watch(watcher, closing)
    watch(watcher, later)
    assert notifications.raise_closing_soon_alerts() == 1
    assert notifications.raise_closing_soon_alerts() == 0  # once per house
    call_command("send_notifications")
    relay_twice()
    [message] = inbox(watcher.email)
    assert message.subject == "Last day: Soon closes soon"
    assert sent_to(Kind.HOUSE_CLOSING_SOON) == [watcher.email]


def test_a_draw_tells_the_winner_and_the_others_once_each(make_person, make_house) -> None:
    house = make_house(title="Drawn House")
    winner, loser, watcher = make_person(), make_person(), make_person()
    buy(winner, house, 1)
    buy(loser, house, 1)
    watch(watcher, house)
    watch(winner, house)
    number = Ticket.objects.get(owner=winner).ticket_number
    # The draws' payload; without a winner id the ticket is looked up by number.
    emit(
        "draw.completed",
        {
            "draw_id": 7,
            "house_id": house.pk,
            "winning_ticket_number": number,
            "winner_user_id": None,
            "entropy_source": "manual",
            "supersedes_draw_id": None,
        },
    )
    relay_twice()
    assert sent_to(Kind.DRAW_WON) == [winner.email]
    assert sent_to(Kind.HOUSE_DRAWN) == sorted([loser.email, watcher.email])
    [won] = [m for m in inbox(winner.email) if "won" in m.subject]
    assert won.subject == "You won Drawn House!" and str(number) in won.body
    assert len(mail.outbox) == 2 + 3  # two purchases, then one email per person about the draw


def test_a_cancellation_tells_watchers_and_ticket_holders_once(make_person, make_house) -> None:
    house = make_house(title="Gone")
    holder, watcher = make_person(), make_person()
    buy(holder, house, 1)
    watch(watcher, house)
    watch(holder, house)
    House.objects.filter(pk=house.pk).update(status=House.Status.CANCELLED)
    emit("lottery.cancelled", {"house_id": house.pk, "reason": "minimum_not_met"})
    relay_twice()
    assert sent_to(Kind.HOUSE_CANCELLED) == sorted([holder.email, watcher.email])
    [to_holder] = [m for m in inbox(holder.email) if "cancelled" in m.subject]
    assert "refunded in full" in to_holder.body
    [to_watcher] = inbox(watcher.email)
    assert "refunded" not in to_watcher.body


def test_players_who_switched_notifications_off_get_nothing(make_person, make_house) -> None:
    quiet, loud = make_person(), make_person()
    client = client_for(quiet)
    response = client.patch("/api/v1/me/", {"notifications": False}, format="json")
    assert response.status_code == 200 and response.json()["notifications"] is False
    assert client.get("/api/v1/me/").json()["notifications"] is False
    assert not PlayerProfile.objects.get(user=quiet).notifications_enabled
    house = make_house()
    buy(quiet, house)
    buy(loud, house)
    watch(quiet, house)
    emit("lottery.cancelled", {"house_id": house.pk, "reason": "staff"})
    relay_twice()
    assert inbox(quiet.email) == []
    assert len(inbox(loud.email)) == 2  # the purchase and the cancellation
    assert not NotificationDelivery.objects.filter(recipient=quiet).exists()
    back_on = client.patch("/api/v1/me/", {"notifications": True}, format="json")
    assert back_on.json()["notifications"] is True


def test_patch_me_refuses_a_bad_value(make_person) -> None:
    client = client_for(make_person())
    response = client.patch("/api/v1/me/", {"notifications": "loud"}, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_a_duplicate_send_task_sends_nothing_twice(make_person, make_house) -> None:
    buyer = make_person()
    buy(buyer, make_house())
    delivery = NotificationDelivery.objects.get()
    assert send_notification.delay(delivery.pk).get() == "sent"
    assert send_notification.delay(delivery.pk).get() == "sent"
    assert len(inbox(buyer.email)) == 1


@pytest.mark.usefixtures("eager_retry_chain")
def test_a_dead_smtp_server_is_retried_then_dead_lettered_and_nothing_counts_as_sent(
    make_person, make_house, settings
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    settings.EMAIL_TIMEOUT = 2
    buyer = make_person()
    buy(buyer, make_house(title="Offline"))
    relay_twice()

    delivery = NotificationDelivery.objects.get()
    assert delivery.status == NotificationDelivery.Status.FAILED
    assert delivery.attempts == 6  # the first try and five retries
    assert delivery.sent_at is None
    assert "ConnectionRefusedError" in delivery.last_error
    [letter] = DeadLetter.objects.filter(task_name="notifications.send")
    assert letter.args == [delivery.pk]

    # The mail server comes back; staff replay the dead letter: one email, once.
    with SmtpServer() as server:
        settings.EMAIL_PORT = server.port
        call_command("replay_dead_letters")
        call_command("replay_dead_letters")
        relay_twice()
        notifications.send_stalled_notifications()
    [received] = server.messages
    assert received["to"] == [buyer.email]
    assert "Subject: Your tickets for Offline" in received["data"]
    assert "text/html" in received["data"]
    delivery.refresh_from_db()
    assert delivery.status == NotificationDelivery.Status.SENT and delivery.attempts == 7


def test_the_sweep_sends_a_delivery_whose_task_was_lost(make_person, make_house) -> None:
    buyer = make_person()
    with broker_down():  # the send task cannot be queued
        buy(buyer, make_house())
        relay_twice()
    delivery = NotificationDelivery.objects.get()
    assert delivery.status == NotificationDelivery.Status.PENDING and mail.outbox == []
    assert notifications.send_stalled_notifications() == 0  # not stalled yet
    NotificationDelivery.objects.filter(pk=delivery.pk).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    assert notifications.send_stalled_notifications() == 1
    assert notifications.send_stalled_notifications() == 0
    assert len(inbox(buyer.email)) == 1
