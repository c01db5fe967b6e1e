"""Session-authenticated writes need the CSRF token; the token-only hot path ignores sessions.

A browser logged in to the admin carries a session cookie to the API too: a
page on another site must not be able to make it write. DRF's
SessionAuthentication enforces CSRF on unsafe methods; ``POST /reservations/``
authenticates by token only, so a session alone is not even a login there.
"""

import uuid

import pytest
from django.test import Client

from reservations.models import Reservation
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(player) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(player)
    return client


def csrf_token(browser: Client) -> str:
    browser.get("/admin/login/")  # any page that renders a form sets the cookie
    return browser.cookies["csrftoken"].value


@pytest.fixture
def reservation_id(player, make_house) -> str:
    house = make_house(total_tickets=10)
    response = client_for(player).post(
        "/api/v1/reservations/",
        {"house_id": house.pk, "quantity": 1},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert response.status_code == 201
    return response.json()["id"]


def test_session_reads_need_no_csrf_token(browser) -> None:
    assert browser.get("/api/v1/me/").status_code == 200


def test_session_cancel_without_the_csrf_token_is_refused(browser, reservation_id) -> None:
    answer = browser.post(
        f"/api/v1/reservations/{reservation_id}/cancel/", {}, content_type="application/json"
    )
    assert answer.status_code == 403
    assert answer["Content-Type"].startswith("application/problem+json")
    assert "CSRF" in answer.json()["detail"]
    assert Reservation.objects.get(pk=reservation_id).status == Reservation.Status.PENDING


def test_session_cancel_with_the_csrf_token_is_accepted(browser, reservation_id) -> None:
    token = csrf_token(browser)
    answer = browser.post(
        f"/api/v1/reservations/{reservation_id}/cancel/",
        {},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert answer.status_code == 200, answer.content
    assert Reservation.objects.get(pk=reservation_id).status == Reservation.Status.CANCELLED


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/api/v1/me/", {"notifications": False}),
        ("post", "/api/v1/watchlist/", {"house_id": 1}),
        ("delete", "/api/v1/watchlist/1/", None),
    ],
)
def test_other_session_writes_without_the_csrf_token_are_refused(
    browser, method, path, body
) -> None:
    send = getattr(browser, method)
    answer = send(path, body, content_type="application/json") if body else send(path)
    assert answer.status_code == 403
    assert "CSRF" in answer.json()["detail"]


def test_a_session_alone_cannot_reserve_on_the_token_only_hot_path(browser, make_house) -> None:
    house = make_house(total_tickets=10)
    answer = browser.post(
        "/api/v1/reservations/",
        {"house_id": house.pk, "quantity": 1},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert answer.status_code == 401
    assert not Reservation.objects.exists()


def test_admin_login_without_the_csrf_token_is_refused(staff) -> None:
    answer = Client(enforce_csrf_checks=True).post(
        "/admin/login/", {"username": staff.username, "password": "correct horse battery staple"}
    )
    assert answer.status_code == 403
