"""Each console action works for its group, is refused for the others, and is audited once.

Three staff users, none a superuser: a ``Lottery operators`` member, a ``Finance``
member and a staff user in no group. For every action: the right group runs it
through the real pages (CSRF enforced) and leaves exactly one audit entry by
them; the others are not offered the action, and a forged POST changes nothing
and leaves no entry.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from core.models import AuditEntry, DeadLetter
from draws.models import Draw
from draws.services.passes import run_due
from draws.services.running import conduct_draw
from lottery.models import House
from payments.models import Payment, Refund
from purchases.services.refunds import refund_purchase
from reservations.models import Reservation
from tests.console.staff import (
    ROLES,
    browser_for,
    force_action,
    offered_actions,
    staff_member,
)
from tests.core.test_audit_trail import pending_reservation
from tests.draws.flow import ENTROPY, activated_house, buy, end_sales, live_draw
from tests.factories import create_house

User = get_user_model()
pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Case:
    obj: Model
    action: str
    done: Callable[[], bool]  # has the write happened?
    confirm: dict[str, str] | None = None
    audited: str = ""


def _house_status(status: str) -> Callable[[House], bool]:
    def done(house: House) -> bool:
        return House.objects.get(pk=house.pk).status == status

    return done


def house_status_case(action: str, start: str, end: str, audited: str) -> Callable:
    def make(make_player: Callable[..., User]) -> Case:
        house = create_house(status=start)
        return Case(house, action, lambda: _house_status(end)(house), audited=audited)

    return make


def activate(make_player: Callable[..., User]) -> Case:
    house = create_house(status=House.Status.DRAFT)

    def done() -> bool:
        house.refresh_from_db()
        return house.status == House.Status.ACTIVE and bool(house.draw_commitment)

    return Case(house, "make_active", done, audited="house_activated")


def soft_delete(make_player: Callable[..., User]) -> Case:
    house = create_house(status=House.Status.DRAFT)
    done = lambda: House.objects.get(pk=house.pk).deleted_at is not None  # noqa: E731
    return Case(house, "soft_delete", done, audited="house_soft_deleted")


def cancel(make_player: Callable[..., User]) -> Case:
    house = create_house()
    purchase = buy(make_player(), house, 2)

    def done() -> bool:
        cancelled = House.objects.get(pk=house.pk).status == House.Status.CANCELLED
        return cancelled and Refund.objects.filter(payment__reservation=purchase).exists()

    return Case(
        house,
        "cancel_lottery",
        done,
        confirm={"reason": "seller withdrew"},
        audited="lottery_cancelled",
    )


def expire(make_player: Callable[..., User]) -> Case:
    reservation = pending_reservation(make_player(), create_house())

    def done() -> bool:
        return Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.EXPIRED

    return Case(reservation, "expire_now", done, audited="reservation_expired")


def _refunded(payment: Payment) -> Callable[[], bool]:
    return lambda: Refund.objects.filter(payment=payment, reason="buyer asked").exists()


def refund_payment(make_player: Callable[..., User]) -> Case:
    payment = Payment.objects.get(reservation=buy(make_player(), create_house(), 2))
    return Case(
        payment,
        "refund_purchases",
        _refunded(payment),
        confirm={"reason": "buyer asked"},
        audited="purchase_refunded",
    )


def refund_reservation(make_player: Callable[..., User]) -> Case:
    purchase = buy(make_player(), create_house(), 2)
    payment = Payment.objects.get(reservation=purchase)
    return Case(
        purchase,
        "refund_purchases",
        _refunded(payment),
        confirm={"reason": "buyer asked"},
        audited="purchase_refunded",
    )


def retry(make_player: Callable[..., User]) -> Case:
    purchase = buy(make_player(), create_house(), 2)
    refund = refund_purchase(reservation=purchase.pk, reason="test")
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.NEEDS_ATTENTION)

    def done() -> bool:
        return Refund.objects.get(pk=refund.pk).status != Refund.Status.NEEDS_ATTENTION

    return Case(refund, "retry_now", done, audited="refund_retried")


def _dead_letter() -> DeadLetter:
    return DeadLetter.objects.create(
        task_name="tests.audit_noop", exception_type="ConnectionError", last_error="refused"
    )


def requeue(make_player: Callable[..., User]) -> Case:
    letter = _dead_letter()
    done = lambda: DeadLetter.objects.get(pk=letter.pk).requeue_count == 1  # noqa: E731
    return Case(letter, "requeue", done, audited="dead_letter_requeued")


def discard(make_player: Callable[..., User]) -> Case:
    letter = _dead_letter()
    done = lambda: DeadLetter.objects.get(pk=letter.pk).status != DeadLetter.Status.OPEN  # noqa: E731
    return Case(letter, "discard", done, audited="dead_letter_discarded")


# action -> (how to prepare it, the group that may run it)
ACTIONS: dict[str, tuple[Callable[..., Case], str]] = {
    "house activate": (activate, "operator"),
    "house pause": (
        house_status_case("make_paused", "active", "paused", "house_paused"),
        "operator",
    ),
    "house resume": (
        house_status_case("make_active", "paused", "active", "house_resumed"),
        "operator",
    ),
    "house close early": (
        house_status_case("make_closed", "active", "closed", "house_closed"),
        "operator",
    ),
    "house soft delete": (soft_delete, "operator"),
    "house cancel": (cancel, "operator"),
    "reservation expire now": (expire, "operator"),
    "reservation refund": (refund_reservation, "finance"),
    "payment refund": (refund_payment, "finance"),
    "refund retry now": (retry, "finance"),
    "dead letter replay": (requeue, "finance"),
    "dead letter discard": (discard, "finance"),
}


def _new_entries(before: set[int]) -> list[AuditEntry]:
    return list(AuditEntry.objects.exclude(pk__in=before))


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_the_right_group_runs_the_action_with_one_audit_entry(
    name: str, make_player: Callable[..., User]
) -> None:
    prepare, role = ACTIONS[name]
    user = staff_member(make_player, role)
    case = prepare(make_player)
    assert not case.done()
    before = set(AuditEntry.objects.values_list("pk", flat=True))

    assert case.action in offered_actions(user, type(case.obj))
    browser_for(user).run_action(case.obj, case.action, case.confirm)

    assert case.done(), f"{name}: the action did not happen for {role}"
    [entry] = _new_entries(before)
    assert (entry.actor, entry.action) == (user, case.audited)
    assert entry.reason == (case.confirm or {}).get("reason", "")


@pytest.mark.parametrize(
    ("name", "role"),
    [(name, role) for name in sorted(ACTIONS) for role in ROLES if role != ACTIONS[name][1]],
)
def test_other_staff_are_refused_the_action_and_leave_no_entry(
    name: str, role: str, make_player: Callable[..., User]
) -> None:
    prepare, _ = ACTIONS[name]
    user = staff_member(make_player, role)
    case = prepare(make_player)
    before = set(AuditEntry.objects.values_list("pk", flat=True))

    offered = offered_actions(user, type(case.obj))
    assert offered is None or case.action not in offered, f"{role} is offered {name}"
    response = force_action(user, case.obj, case.action, case.confirm)

    # Refused (403), or the action ignored: back to the list (302), or the list itself (200)
    # when the user may read the list but has no action on it at all.
    assert response.status_code in (200, 302, 403)
    if response.status_code == 200:
        assert "cl" in response.context, "a confirmation page was shown"
    assert not case.done(), f"{name} happened for {role}"
    assert _new_entries(before) == []


def test_a_staff_user_in_no_group_sees_none_of_the_console_lists(
    make_player: Callable[..., User],
) -> None:
    client = Client()
    client.force_login(staff_member(make_player, "outsider"))
    for model in ("lottery/house", "lottery/promotion", "reservations/reservation"):
        assert client.get(f"/admin/{model}/").status_code == 403, model
    for model in ("purchases/ticket", "payments/payment", "payments/refund", "draws/draw"):
        assert client.get(f"/admin/{model}/").status_code == 403, model
    for model in ("core/deadletter", "core/auditentry"):
        assert client.get(f"/admin/{model}/").status_code == 403, model


@pytest.mark.parametrize("role", ["operator", "finance"])
def test_each_group_reads_reservations_tickets_and_the_audit_trail(
    role: str, make_player: Callable[..., User]
) -> None:
    client = Client()
    client.force_login(staff_member(make_player, role))
    buy(make_player(), create_house(), 1)
    for model in ("reservations/reservation", "purchases/ticket", "core/auditentry"):
        assert client.get(f"/admin/{model}/").status_code == 200, model
    reservation = Reservation.objects.get()
    page = client.get(f"/admin/reservations/reservation/{reservation.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # read-only


def test_the_superuser_is_offered_every_action(staff: User) -> None:
    for model in (House, Reservation, Payment, Refund, DeadLetter):
        assert offered_actions(staff, model), model
    offered = offered_actions(staff, House) | offered_actions(staff, Reservation)
    assert {"make_active", "cancel_lottery", "soft_delete", "expire_now", "refund_purchases"} <= (
        offered
    )


# --- The draw pages (custom admin views) ----------------------------------------------


def _frozen_draw(make_player: Callable[..., User], house: House | None = None) -> Draw:
    house = house or activated_house(total_tickets=50)
    for _ in range(3):
        buy(make_player(), house, 2)
    end_sales(house)
    run_due()
    return live_draw(house)


def conduct_page(make_player: Callable[..., User], operator: User) -> tuple[str, dict, Callable]:
    draw = _frozen_draw(make_player)
    url = reverse("admin:draws_draw_conduct", args=[draw.pk])
    done = lambda: Draw.objects.get(pk=draw.pk).status == Draw.Status.COMPLETED  # noqa: E731
    return url, {"entropy": ENTROPY, "source": "dice"}, done


def disqualify_page(make_player: Callable[..., User], operator: User) -> tuple[str, dict, Callable]:
    draw = _frozen_draw(make_player)
    conduct_draw(draw_id=draw.pk, actor=operator, entropy=ENTROPY, source="dice")
    url = reverse("admin:draws_draw_disqualify", args=[draw.pk])
    done = lambda: Draw.objects.filter(supersedes=draw).exists()  # noqa: E731
    return url, {"reason": "winner is an employee"}, done


def cancel_lottery_page(
    make_player: Callable[..., User], operator: User
) -> tuple[str, dict, Callable]:
    house = create_house()  # no commitment: its draw is flagged at close, staff cancel it
    draw = _frozen_draw(make_player, house)
    url = reverse("admin:draws_draw_cancel_lottery", args=[draw.pk])
    done = lambda: House.objects.get(pk=house.pk).status == House.Status.CANCELLED  # noqa: E731
    return url, {"reason": "no commitment"}, done


DRAW_PAGES = {
    "conduct": conduct_page,
    "disqualify": disqualify_page,
    "cancel lottery": cancel_lottery_page,
}


@pytest.mark.parametrize("page", sorted(DRAW_PAGES))
@pytest.mark.parametrize("role", ROLES)
def test_draw_pages_are_for_lottery_operators_only(
    page: str, role: str, make_player: Callable[..., User]
) -> None:
    operator = staff_member(make_player, "operator")
    user = operator if role == "operator" else staff_member(make_player, role)
    url, fields, done = DRAW_PAGES[page](make_player, operator)
    before = set(AuditEntry.objects.values_list("pk", flat=True))

    if role == "operator":
        browser_for(user).submit(url, fields)
        assert done()
        [entry] = _new_entries(before)
        assert entry.actor == user
        return
    client = Client()
    client.force_login(user)
    assert client.get(url).status_code == 403
    assert client.post(url, fields).status_code == 403
    assert not done()
    assert _new_entries(before) == []


# --- The edit forms (houses, promotions) -----------------------------------------------


def _promotion_form() -> dict[str, str]:
    return {
        "code": "SPRING",
        "discount_percent": "15",
        "valid_from_0": "2030-01-01",
        "valid_from_1": "00:00:00",
        "valid_until_0": "2030-01-08",
        "valid_until_1": "00:00:00",
    }


@pytest.mark.parametrize("role", ROLES)
def test_only_lottery_operators_add_promotions_and_edit_houses(
    role: str, make_player: Callable[..., User]
) -> None:
    user = staff_member(make_player, role)
    house = create_house(status=House.Status.DRAFT, title="Old title")
    add_url = reverse("admin:lottery_promotion_add")
    change_url = reverse("admin:lottery_house_change", args=[house.pk])

    if role == "operator":
        browser = browser_for(user)
        browser.submit(add_url, _promotion_form())
        browser.submit(change_url, {"title": "New title"})
        assert House.objects.get(pk=house.pk).title == "New title"
        assert sorted(AuditEntry.objects.values_list("action", flat=True)) == [
            "house_edited",
            "promotion_created",
        ]
        return
    client = Client()
    client.force_login(user)
    assert client.get(add_url).status_code == 403
    assert client.post(add_url, _promotion_form()).status_code == 403
    assert client.post(change_url, {"title": "New title"}).status_code == 403
    assert House.objects.get(pk=house.pk).title == "Old title"
    assert not AuditEntry.objects.exists()


def test_draw_page_offers_its_button_only_to_those_allowed_to_press_it(
    make_player: Callable[..., User],
) -> None:
    operator = staff_member(make_player, "operator")
    viewer = staff_member(make_player, "outsider")
    viewer.user_permissions.add(Permission.objects.get(codename="view_draw"))
    url, _, _ = conduct_page(make_player, operator)
    change_page = reverse("admin:draws_draw_change", args=[url.split("/")[-3]])

    pages = {}
    for user in (operator, viewer):
        client = Client()
        client.force_login(user)
        pages[user] = client.get(change_page)
    assert pages[operator].status_code == pages[viewer].status_code == 200
    assert url in pages[operator].content.decode()
    assert url not in pages[viewer].content.decode()
