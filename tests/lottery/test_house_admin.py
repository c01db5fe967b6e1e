"""The staff console for houses and promotions writes only through services."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from lottery.models import House, Promotion
from tests.reservations.conftest import create_house, create_promotion


@pytest.fixture
def staff_client(make_player) -> Client:
    user = make_player(is_staff=True)
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    client = Client()
    client.force_login(user)
    return client


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
