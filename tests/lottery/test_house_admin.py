"""The staff console for houses and promotions writes only through services."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from lottery.models import House, Promotion
from tests.factories import create_house, create_promotion


def test_admin_pages_open_for_staff(staff_client, db) -> None:
    house = create_house()
    create_promotion()
    for url in (
        "/admin/lottery/house/",
        f"/admin/lottery/house/{house.pk}/change/",
        "/admin/lottery/promotion/",
        "/admin/reservations/reservation/",
    ):
        assert staff_client.get(url).status_code == 200, url


def test_admin_action_activates_a_draft_through_the_service(staff_client, db) -> None:
    house = create_house(status=House.Status.DRAFT)
    response = staff_client.post(
        "/admin/lottery/house/",
        {"action": "make_active", "_selected_action": [house.pk]},
    )
    assert response.status_code == 302
    house.refresh_from_db()
    assert house.status == House.Status.ACTIVE


def test_admin_cannot_delete_a_house(staff_client, db) -> None:
    house = create_house()
    assert staff_client.get(f"/admin/lottery/house/{house.pk}/delete/").status_code == 403


def test_promotion_codes_are_unique_whatever_the_case(db) -> None:
    create_promotion(code="Summer")
    with pytest.raises(IntegrityError, match="promotion_code_unique_ci"), transaction.atomic():
        create_promotion(code="SUMMER")


def test_promotion_needs_exactly_one_kind_of_discount(db) -> None:
    with (
        pytest.raises(IntegrityError, match="promotion_exactly_one_discount_kind"),
        transaction.atomic(),
    ):
        create_promotion(discount_amount=Decimal("5.00"), currency="EUR")
    assert not Promotion.objects.exists()


def test_editing_limits_below_what_is_taken_is_a_validation_error(db) -> None:
    from core import exceptions as domain
    from lottery.services import save_house

    house = create_house(total_tickets=10)
    House.objects.filter(pk=house.pk).update(tickets_reserved=5, participants_count=3)
    house.total_tickets = 3
    with pytest.raises(domain.ValidationFailed) as refused:
        save_house(house=house)
    assert refused.value.errors[0]["field"] == "total_tickets"
    house.total_tickets, house.participant_cap = 10, 2
    with pytest.raises(domain.ValidationFailed) as refused:
        save_house(house=house)
    assert refused.value.errors[0]["field"] == "participant_cap"
    assert House.objects.get(pk=house.pk).total_tickets == 10


def test_an_edit_never_undoes_a_concurrent_status_change_or_delete(db) -> None:
    from lottery.services import change_house_status, save_house, soft_delete_house

    house = create_house()  # active
    stale = House.objects.get(pk=house.pk)
    change_house_status(house_id=house.pk, to_status=House.Status.CLOSED)
    soft_delete_house(house_id=house.pk)
    stale.title = "Renamed"
    stale.draw_commitment = "f" * 64
    save_house(house=stale)
    fresh = House.objects.get(pk=house.pk)
    assert fresh.title == "Renamed"
    assert fresh.status == House.Status.CLOSED
    assert fresh.deleted_at is not None
    assert fresh.draw_commitment == house.draw_commitment


def test_admin_form_shows_the_limit_error_instead_of_failing(db) -> None:
    from django.forms.models import model_to_dict

    from lottery.admin import HouseAdminForm

    house = create_house(total_tickets=10)
    House.objects.filter(pk=house.pk).update(tickets_reserved=5)
    house.refresh_from_db()
    data = {k: v for k, v in model_to_dict(house).items() if v is not None}
    data.update(
        total_tickets=3,
        sales_start_at=house.sales_start_at.strftime("%Y-%m-%d %H:%M:%S"),
        sales_end_at=house.sales_end_at.strftime("%Y-%m-%d %H:%M:%S"),
    )
    form = HouseAdminForm(data=data, instance=house)
    assert not form.is_valid()
    assert "total_tickets" in form.errors
