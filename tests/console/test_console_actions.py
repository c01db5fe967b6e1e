"""What the console's pages say and refuse: cancel counts its refunds, delete is soft and
refused once tickets exist, a refund needs a reason, expiry is for pending only,
refunds needing attention come first, a dead letter shows its payload and error."""

from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from core import metrics
from core.models import AuditEntry, DeadLetter
from lottery.models import House
from payments.models import Payment, Refund
from purchases.services.refunds import refund_purchase
from reservations.models import Reservation
from tests.console.staff import browser_for, changelist_url, staff_member
from tests.core.test_audit_trail import pending_reservation
from tests.draws.flow import buy
from tests.factories import create_house

User = get_user_model()


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _select(obj: object, action: str, **extra: str) -> dict:
    return {"action": action, "_selected_action": [str(obj.pk)], "index": "0", **extra}


@pytest.mark.django_db(transaction=True)
def test_cancel_asks_for_confirmation_saying_how_many_purchases_will_be_refunded(
    make_player: Callable[..., User],
) -> None:
    operator = staff_member(make_player, "operator")
    house = create_house(title="Villa Sol")
    for _ in range(3):
        buy(make_player(), house, 2)
    pending_reservation(make_player(), house)  # held, not paid: nothing to refund

    page = _client(operator).post(changelist_url(House), _select(house, "cancel_lottery"))

    assert page.status_code == 200
    text = page.content.decode()
    assert "Villa Sol (Active): 3 purchase(s) will be refunded, 60.00 EUR in total." in text
    assert 'name="reason"' in text
    assert House.objects.get(pk=house.pk).status == House.Status.ACTIVE
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_confirmed_cancel_refunds_every_purchase_through_the_cancellation_service(
    make_player: Callable[..., User],
) -> None:
    operator = staff_member(make_player, "operator")
    house = create_house()
    purchases = [buy(make_player(), house, 2) for _ in range(3)]

    browser_for(operator).run_action(house, "cancel_lottery", {"reason": "seller withdrew"})

    assert House.objects.get(pk=house.pk).status == House.Status.CANCELLED
    refunds = Refund.objects.filter(payment__reservation__in=purchases)
    assert refunds.count() == 3
    assert set(refunds.values_list("reason", flat=True)) == {"lottery_cancelled"}
    [entry] = AuditEntry.objects.all()
    assert (entry.action, entry.actor, entry.reason) == (
        "lottery_cancelled",
        operator,
        "seller withdrew",
    )


@pytest.mark.django_db(transaction=True)
def test_cancel_without_a_reason_is_refused(make_player: Callable[..., User]) -> None:
    operator = staff_member(make_player, "operator")
    house = create_house()
    buy(make_player(), house, 1)

    page = _client(operator).post(
        changelist_url(House), _select(house, "cancel_lottery", post="yes", reason="  ")
    )

    assert page.status_code == 200
    assert "This field is required." in page.content.decode()
    assert House.objects.get(pk=house.pk).status == House.Status.ACTIVE
    assert not Refund.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_soft_delete_is_refused_once_tickets_exist(make_player: Callable[..., User]) -> None:
    operator = staff_member(make_player, "operator")
    sold = create_house()
    buy(make_player(), sold, 1)
    refunded = create_house()  # every ticket refunded: the counters are back to 0
    refund_purchase(reservation=buy(make_player(), refunded, 1).pk, reason="test")
    refunded.refresh_from_db()
    assert (refunded.tickets_sold, refunded.tickets_reserved) == (0, 0)
    empty = create_house(status=House.Status.DRAFT)

    browser = browser_for(operator)
    for house in (sold, refunded, empty):
        browser.run_action(house, "soft_delete")

    deleted = set(House.objects.filter(deleted_at__isnull=False).values_list("pk", flat=True))
    assert deleted == {empty.pk}
    [entry] = AuditEntry.objects.all()
    assert (entry.action, entry.object_id) == ("house_soft_deleted", str(empty.pk))


@pytest.mark.django_db
def test_nobody_deletes_a_house_for_real(make_player: Callable[..., User], staff: User) -> None:
    house = create_house(status=House.Status.DRAFT)
    for user in (staff_member(make_player, "operator"), staff):
        client = _client(user)
        assert client.get(f"/admin/lottery/house/{house.pk}/delete/").status_code == 403
        page = client.get(changelist_url(House))
        actions = {name for name, _ in page.context["action_form"].fields["action"].choices}
        assert "delete_selected" not in actions
    assert House.objects.filter(pk=house.pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("model", [Payment, Reservation])
def test_refund_requires_a_reason(model: type, make_player: Callable[..., User]) -> None:
    finance = staff_member(make_player, "finance")
    purchase = buy(make_player(), create_house(), 2)
    obj = purchase if model is Reservation else Payment.objects.get(reservation=purchase)
    client = _client(finance)

    asked = client.post(changelist_url(model), _select(obj, "refund_purchases"))
    assert asked.status_code == 200
    assert 'name="reason"' in asked.content.decode()
    for blank in ("", "   "):
        page = client.post(
            changelist_url(model), _select(obj, "refund_purchases", post="yes", reason=blank)
        )
        assert page.status_code == 200
        assert "This field is required." in page.content.decode()

    assert not Refund.objects.exists()
    assert not AuditEntry.objects.exists()
    assert Reservation.objects.get(pk=purchase.pk).status == Reservation.Status.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_the_reason_is_kept_on_the_refund_and_its_audit_entry(
    make_player: Callable[..., User],
) -> None:
    finance = staff_member(make_player, "finance")
    purchase = buy(make_player(), create_house(), 2)

    browser_for(finance).run_action(purchase, "refund_purchases", {"reason": "double charge"})

    refund = Refund.objects.get()
    assert (refund.reason, refund.requested_by) == ("double charge", finance)
    [entry] = AuditEntry.objects.all()
    assert (entry.action, entry.reason) == ("purchase_refunded", "double charge")


@pytest.mark.django_db(transaction=True)
def test_refund_is_for_completed_purchases_only(make_player: Callable[..., User]) -> None:
    finance = staff_member(make_player, "finance")
    reservation = pending_reservation(make_player(), create_house())

    browser_for(finance).run_action(reservation, "refund_purchases", {"reason": "asked"})

    assert not Refund.objects.exists()
    assert not AuditEntry.objects.exists()
    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.PENDING


@pytest.mark.django_db(transaction=True)
def test_expire_now_is_for_pending_reservations_only(make_player: Callable[..., User]) -> None:
    operator = staff_member(make_player, "operator")
    house = create_house()
    pending = pending_reservation(make_player(), house)
    completed = buy(make_player(), house, 1)

    expired_before = metrics.snapshot()[0].get("reservations_expired_total", 0)
    browser = browser_for(operator)
    browser.run_action(pending, "expire_now")
    browser.run_action(completed, "expire_now")

    house.refresh_from_db()
    assert metrics.snapshot()[0].get("reservations_expired_total", 0) == expired_before + 1
    assert Reservation.objects.get(pk=pending.pk).status == Reservation.Status.EXPIRED
    assert Reservation.objects.get(pk=completed.pk).status == Reservation.Status.COMPLETED
    assert (house.tickets_reserved, house.tickets_sold) == (0, 1)  # the hold went back
    [entry] = AuditEntry.objects.all()
    assert (entry.action, entry.object_id) == ("reservation_expired", str(pending.pk))
    page = _client(operator).get(f"/admin/reservations/reservation/{pending.pk}/change/")
    assert f"object_type=reservations.reservation&amp;object_id={pending.pk}" in (
        page.content.decode()
    )


@pytest.mark.django_db(transaction=True)
def test_actions_without_the_csrf_token_are_refused(make_player: Callable[..., User]) -> None:
    operator = staff_member(make_player, "operator")
    house = create_house(status=House.Status.DRAFT)
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)

    response = client.post(changelist_url(House), _select(house, "make_active"))

    assert response.status_code == 403
    assert House.objects.get(pk=house.pk).status == House.Status.DRAFT
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_house_list_shows_sold_of_total_participants_and_commitment(
    make_player: Callable[..., User],
) -> None:
    operator = staff_member(make_player, "operator")
    committed = create_house(title="Committed", draw_commitment="ab" * 32)
    create_house(title="Uncommitted")
    client = _client(operator)

    page = client.get(changelist_url(House))
    assert page.status_code == 200
    text = page.content.decode()
    for header in ("Sold / total", "Participants count", "Sales end at", "Commitment"):
        assert header in text, header
    assert "0 / 100" in text

    only_committed = client.get(changelist_url(House) + "?commitment=set")
    assert [h.pk for h in only_committed.context["cl"].result_list] == [committed.pk]
    found = client.get(changelist_url(House) + "?q=Uncommitted")
    assert [h.title for h in found.context["cl"].result_list] == ["Uncommitted"]


@pytest.mark.django_db(transaction=True)
def test_refunds_needing_attention_come_first_and_stand_out(
    make_player: Callable[..., User],
) -> None:
    finance = staff_member(make_player, "finance")
    house = create_house()
    refunds = []
    for status in (Refund.Status.SUCCEEDED, Refund.Status.NEEDS_ATTENTION, Refund.Status.FAILED):
        refund = refund_purchase(reservation=buy(make_player(), house, 1).pk, reason="test")
        Refund.objects.filter(pk=refund.pk).update(status=status, last_error="gateway said no")
        refunds.append(refund)

    page = _client(finance).get(changelist_url(Refund))

    listed = [r.status for r in page.context["cl"].result_list]
    assert listed[:2] == [Refund.Status.NEEDS_ATTENTION, Refund.Status.FAILED]
    text = page.content.decode()
    assert "refund-status-needs_attention" in text
    assert "gateway said no" in text
    for header in ("Attempts", "Next attempt at", "Last error"):
        assert header in text, header


@pytest.mark.django_db
def test_a_dead_letter_shows_its_payload_and_error_read_only(
    make_player: Callable[..., User],
) -> None:
    finance = staff_member(make_player, "finance")
    letter = DeadLetter.objects.create(
        task_name="checkout.process",
        args=["5b2c"],
        kwargs={"attempt": 3},
        exception_type="ConnectionError",
        last_error="Traceback ...\nConnectionError: gateway refused",
    )

    page = _client(finance).get(f"/admin/core/deadletter/{letter.pk}/change/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "&quot;attempt&quot;: 3" in text
    assert "5b2c" in text
    assert "ConnectionError: gateway refused" in text
    assert 'name="_save"' not in text
