"""``GET /reservations/{id}/`` with ``Prefer: wait=N``: the checkout's outcome in one request."""

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from purchases.services.checkout import process_checkout, start_checkout
from reservations.waiting import MAX_WAIT_SECONDS
from tests.conftest import client_for
from tests.purchases.conftest import reserve

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_task_runs"),
]


@pytest.fixture(autouse=True)
def waits_allowed(settings) -> None:
    settings.RESERVATION_WAIT_MAX_SECONDS = MAX_WAIT_SECONDS


def detail(reservation_id: object) -> str:
    return f"/api/v1/reservations/{reservation_id}/"


def settle_later(reservation_id: object, delay: float) -> threading.Thread:
    def run() -> None:
        try:
            time.sleep(delay)
            process_checkout(reservation_id=reservation_id)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_waiting_request_answers_as_soon_as_the_checkout_completes(player, house) -> None:
    reservation = reserve(player, house, 2)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    worker = settle_later(reservation.pk, 0.5)
    started = time.monotonic()
    response = client_for(player).get(detail(reservation.pk), HTTP_PREFER="wait=8")
    elapsed = time.monotonic() - started
    worker.join()
    assert response.status_code == 200
    assert response.json()["status"] == "completed" and response.json()["tickets"] == [1, 2]
    assert response["Preference-Applied"] == "wait=8"
    assert 0.4 < elapsed < 4


def test_a_declined_checkout_wakes_the_waiting_request_too(player, house) -> None:
    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_declined")
    worker = settle_later(reservation.pk, 0.3)
    response = client_for(player).get(detail(reservation.pk), HTTP_PREFER="wait=8")
    worker.join()
    assert response.json()["status"] == "failed"
    assert response.json()["failure_code"] == "card_declined"


def test_a_checkout_still_processing_after_the_wait_is_answered_processing(player, house) -> None:
    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    started = time.monotonic()
    response = client_for(player).get(detail(reservation.pk), HTTP_PREFER="wait=1")
    assert 0.9 < time.monotonic() - started < 3
    assert response.json()["status"] == "processing"
    assert response["Preference-Applied"] == "wait=1"


@pytest.mark.parametrize("prefer", ["", "wait=abc", "respond-async", "wait=-3", "wait"])
def test_without_a_valid_wait_the_answer_is_immediate(player, house, prefer) -> None:
    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    started = time.monotonic()
    response = client_for(player).get(detail(reservation.pk), HTTP_PREFER=prefer)
    assert time.monotonic() - started < 0.5
    assert response.json()["status"] == "processing"
    assert "Preference-Applied" not in response


def test_a_reservation_that_is_not_processing_is_answered_without_waiting(player, house) -> None:
    reservation = reserve(player, house, 1)  # pending: nothing will settle it by itself
    started = time.monotonic()
    response = client_for(player).get(
        detail(reservation.pk), HTTP_PREFER=f"respond-async, wait={MAX_WAIT_SECONDS * 10}"
    )
    assert time.monotonic() - started < 0.5
    assert response.json()["status"] == "pending"
    assert "Preference-Applied" not in response


def test_without_redis_the_waiting_request_polls_the_database(player, house, settings) -> None:
    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    worker = settle_later(reservation.pk, 0.3)
    settings.REDIS_URL = ""  # no Redis to wait on: the view looks again every 100 ms
    response = client_for(player).get(detail(reservation.pk), HTTP_PREFER="wait=8")
    worker.join()
    assert response.json()["status"] == "completed"


def test_by_default_the_server_ignores_the_preference(player, house, settings) -> None:
    # A held request holds a web thread; sync workers must not be tied up by clients.
    settings.RESERVATION_WAIT_MAX_SECONDS = 0
    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    started = time.monotonic()
    answer = client_for(player).get(detail(reservation.pk), HTTP_PREFER="wait=5")
    assert time.monotonic() - started < 5
    assert answer.json()["status"] == "processing"
    assert "Preference-Applied" not in answer


def test_a_longer_wait_than_the_server_allows_is_cut_to_its_limit(player, house, settings) -> None:
    settings.RESERVATION_WAIT_MAX_SECONDS = 1
    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    response = client_for(player).get(detail(reservation.pk), HTTP_PREFER="wait=8")
    assert response.json()["status"] == "processing"
    assert response["Preference-Applied"] == "wait=1"


def test_a_session_request_waits_through_drf_as_a_token_request_does(player, house) -> None:
    # Token requests take the lean path (reservations.api.detail); a browser session
    # goes through the DRF view, which must hold the request the same way.
    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    worker = settle_later(reservation.pk, 0.3)
    session = APIClient()
    session.force_login(player)
    response = session.get(detail(reservation.pk), HTTP_PREFER="wait=8")
    worker.join()
    assert response.json()["status"] == "completed"
    assert response["Preference-Applied"] == "wait=8"


def test_both_paths_answer_a_wait_that_ran_out_alike(player, house, settings) -> None:
    settings.RESERVATION_WAIT_MAX_SECONDS = 1
    reservation = reserve(player, house, 1)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    by_token = client_for(player).get(
        detail(reservation.pk), HTTP_PREFER="wait=5", HTTP_X_REQUEST_ID="wait-1"
    )
    session = APIClient()
    session.force_login(player)
    by_session = session.get(
        detail(reservation.pk), HTTP_PREFER="wait=5", HTTP_X_REQUEST_ID="wait-1"
    )
    assert by_token.content == by_session.content
    assert by_token["Preference-Applied"] == by_session["Preference-Applied"] == "wait=1"
    shared = ("Content-Type", "Allow", "Preference-Applied", "X-Request-ID")
    assert [by_token[name] for name in shared] == [by_session[name] for name in shared]
