"""``GET /reservations/{id}/``: the lean path answers exactly what the DRF view answers.

A token request takes the lean path (``reservations.api.detail``); the DRF view
is reached here by turning the lean path's routing off, with everything else
(middleware, authentication, database) the same. Each answer is compared whole:
status, every header, and the bytes of the body (the parsed problem JSON for
refusals, whose rendering outside DRF differs only in whitespace).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from lottery.models import House, PlayerProfile, Promotion
from payments.models import Payment
from purchases.models import Ticket
from reservations import selectors
from reservations.api import detail, views
from reservations.api.serializers import ReservationSerializer, reservation_representation
from reservations.models import Reservation
from reservations.services import reserve_tickets
from tests.conftest import client_for

Status = Reservation.Status
REQUEST_ID = "read-parity-1"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def answer(response: Any) -> Answer:
    return Answer(response.status_code, dict(response.headers.items()), response.content)


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Answer]:
    """GET through the lean path; the DRF view's handler fails if it is reached."""

    def get(client: APIClient, path: str, **headers: str) -> Answer:
        with monkeypatch.context() as patch:
            patch.setattr(views.ReservationDetailView, "get", _not_drf)
            return answer(client.get(path, HTTP_X_REQUEST_ID=REQUEST_ID, **headers))

    return get


@pytest.fixture
def through_drf(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Answer]:
    """The same GET with the lean path's routing off: what DRF alone answers."""

    def get(client: APIClient, path: str, **headers: str) -> Answer:
        with monkeypatch.context() as patch:
            patch.setattr(detail, "takes_lean_path", lambda request: False)
            return answer(client.get(path, HTTP_X_REQUEST_ID=REQUEST_ID, **headers))

    return get


def _not_drf(*args: object, **kwargs: object) -> None:
    raise AssertionError("the request went through DRF")


def detail_path(reservation_id: object) -> str:
    return f"/api/v1/reservations/{reservation_id}/"


# Every status a client can see, with what makes its answer differ: a promotion,
# times with and without microseconds, tickets issued out of order and refunded.
STATUSES = [
    Status.PENDING,
    Status.PROCESSING,
    Status.COMPLETED,
    Status.FAILED,
    Status.EXPIRED,
    Status.CANCELLED,
    Status.REFUND_PENDING,
    Status.REFUNDED,
]
FAILURE_CODES = {
    Status.FAILED: "card_declined",
    Status.REFUND_PENDING: "house_closed",
    Status.REFUNDED: "house_closed",
}


def make_reservation(player: Any, house: House, status: str, promotion: Promotion) -> Reservation:
    created_at = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)  # no microseconds
    settled = status not in (Status.PENDING, Status.EXPIRED, Status.CANCELLED)
    reservation = Reservation.objects.create(
        house=house,
        user=player,
        quantity=3,
        unit_price=Decimal("10.50"),
        discount=Decimal("1.50"),
        total_price=Decimal("30.00"),
        currency="EUR",
        promotion=promotion if status != Status.CANCELLED else None,
        status=status,
        expires_at=created_at + timedelta(minutes=10, microseconds=123456),
        processed_at=created_at + timedelta(seconds=7, microseconds=5) if settled else None,
        failure_code=FAILURE_CODES.get(status, ""),
    )
    Reservation.objects.filter(pk=reservation.pk).update(created_at=created_at)
    if status in (Status.COMPLETED, Status.REFUNDED):
        ticket_status = (
            Ticket.Status.ACTIVE if status == Status.COMPLETED else Ticket.Status.REFUNDED
        )
        payment = Payment.objects.create(
            reservation=reservation,
            amount=reservation.total_price,
            currency="EUR",
            gateway="fake",
            payment_token="tok_ok",
            idempotency_key=str(reservation.pk),
            status=Payment.Status.SUCCEEDED,
        )
        for number in (7, 5, 6):  # out of order on purpose: the answer sorts them
            Ticket.objects.create(
                house=house,
                ticket_number=number + (100 if status == Status.REFUNDED else 0),
                owner=player,
                reservation=reservation,
                payment=payment,
                status=ticket_status,
                issued_at=created_at,
            )
        if status == Status.COMPLETED:  # one refunded ticket no longer counts
            Ticket.objects.filter(reservation=reservation, ticket_number=6).update(
                status=Ticket.Status.REFUNDED
            )
    return reservation


@pytest.fixture
def reservation_in(
    player: Any, make_house: Callable[..., House], make_promotion: Callable[..., Promotion]
) -> Callable[[str], Reservation]:
    house = make_house(total_tickets=1000)
    promotion = make_promotion(code="SPRING-10")
    return lambda status: make_reservation(player, house, status, promotion)


@pytest.mark.django_db
@pytest.mark.parametrize("status", STATUSES)
def test_the_serializer_fields_render_what_reservation_representation_renders(
    player, reservation_in, status
) -> None:
    # The schema comes from the fields; every view renders with the function: same bytes.
    reservation = selectors.reservation_of(player, reservation_in(status).pk)
    through_fields = serializers.ModelSerializer.to_representation(
        ReservationSerializer(), reservation
    )
    renderer = JSONRenderer()
    assert renderer.render(reservation_representation(reservation)) == renderer.render(
        through_fields
    )


def read_as_attributes(reservation: Reservation | None) -> dict[str, tuple[type, Any]] | None:
    if reservation is None:
        return None
    names = [field.attname for field in Reservation._meta.concrete_fields]
    values = {name: getattr(reservation, name) for name in [*names, "promo_code", "ticket_numbers"]}
    return {name: (type(value), value) for name, value in values.items()}


@pytest.mark.django_db
@pytest.mark.parametrize("status", STATUSES)
def test_the_written_out_statement_reads_what_the_orm_reads(player, reservation_in, status):
    if connection.vendor != "postgresql":
        pytest.skip("the written-out statement is PostgreSQL's")
    reservation = reservation_in(status)
    with_sql = selectors.reservation_read_with_sql(player.pk, reservation.pk)
    assert read_as_attributes(with_sql) == read_as_attributes(
        selectors.reservation_read_with_orm(player.pk, reservation.pk)
    )
    assert with_sql._state.adding is False and with_sql._state.db == "default"


@pytest.mark.django_db
def test_the_written_out_statement_finds_only_the_players_own(make_player, reservation_in):
    if connection.vendor != "postgresql":
        pytest.skip("the written-out statement is PostgreSQL's")
    reservation = reservation_in(Status.PENDING)
    for player_id, reservation_id in [
        (make_player().pk, reservation.pk),
        (reservation.user_id, uuid.uuid4()),
    ]:
        assert selectors.reservation_read_with_sql(player_id, reservation_id) is None
        assert selectors.reservation_read_with_orm(player_id, reservation_id) is None


@pytest.mark.django_db
@pytest.mark.parametrize("status", STATUSES)
def test_the_lean_answer_is_the_drf_answer_byte_for_byte(
    player, reservation_in, lean, through_drf, status
) -> None:
    reservation = reservation_in(status)
    client = client_for(player)
    from_drf = through_drf(client, detail_path(reservation.pk))
    from_lean = lean(client, detail_path(reservation.pk))
    assert from_drf.status == 200
    assert from_lean == from_drf
    assert from_lean.headers["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_the_answer_shows_what_the_rows_say(player, reservation_in, lean) -> None:
    completed = lean(client_for(player), detail_path(reservation_in(Status.COMPLETED).pk))
    assert completed.json() | {"id": None, "house_id": None} == {
        "id": None,
        "house_id": None,
        "quantity": 3,
        "unit_price": "10.50",
        "discount": "1.50",
        "total_price": "30.00",
        "currency": "EUR",
        "promo_code": "SPRING-10",
        "status": "completed",
        "expires_at": "2026-03-01T12:10:00.123456Z",
        "processed_at": "2026-03-01T12:00:07.000005Z",
        "failure_code": "",
        "tickets": [5, 7],
        "created_at": "2026-03-01T12:00:00Z",
    }
    refunded = lean(client_for(player), detail_path(reservation_in(Status.REFUNDED).pk)).json()
    assert refunded["tickets"] == [] and refunded["failure_code"] == "house_closed"
    cancelled = lean(client_for(player), detail_path(reservation_in(Status.CANCELLED).pk)).json()
    assert cancelled["promo_code"] is None and cancelled["processed_at"] is None


def assert_same_refusal(from_lean: Answer, from_drf: Answer, *, status: int, code: str) -> None:
    assert from_lean.status == from_drf.status == status
    assert from_lean.json() == from_drf.json()
    assert from_lean.json()["code"] == code
    assert from_lean.json()["request_id"] == REQUEST_ID
    # Problem JSON outside DRF is the same document with other whitespace, so another length.
    del from_lean.headers["Content-Length"], from_drf.headers["Content-Length"]
    assert from_lean.headers == from_drf.headers
    assert from_lean.headers["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    ["Token not-a-token", "Token ", "Token two words"],
    ids=["unknown", "empty", "spaces"],
)
def test_a_bad_token_is_the_same_401(player, reservation_in, lean, through_drf, authorization):
    reservation = reservation_in(Status.PENDING)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)
    from_lean = lean(client, detail_path(reservation.pk))
    assert_same_refusal(
        from_lean,
        through_drf(client, detail_path(reservation.pk)),
        status=401,
        code="not_authenticated",
    )
    assert from_lean.headers["WWW-Authenticate"] == 'Token realm="api"'


@pytest.mark.django_db
def test_a_deactivated_player_is_refused_alike_even_after_a_cached_answer(
    player, reservation_in, lean, through_drf
) -> None:
    reservation = reservation_in(Status.COMPLETED)
    client = client_for(player)
    assert lean(client, detail_path(reservation.pk)).status == 200  # the token is cached now
    player.is_active = False
    player.save(update_fields=["is_active"])  # drops the cached token
    assert_same_refusal(
        lean(client, detail_path(reservation.pk)),
        through_drf(client, detail_path(reservation.pk)),
        status=401,
        code="not_authenticated",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "account_status", [PlayerProfile.AccountStatus.SUSPENDED, PlayerProfile.AccountStatus.BANNED]
)
def test_a_suspended_player_still_reads_their_reservation_on_both_paths(
    make_player, make_house, make_promotion, lean, through_drf, account_status
) -> None:
    # Standing gates what a player may buy, not what they may read: the DRF view
    # never checked it for this read, and the lean path does not either.
    player = make_player(account_status=account_status)
    reservation = make_reservation(
        player, make_house(total_tickets=1000), Status.COMPLETED, make_promotion()
    )
    client = client_for(player)
    from_lean = lean(client, detail_path(reservation.pk))
    assert from_lean.status == 200
    assert from_lean == through_drf(client, detail_path(reservation.pk))


@pytest.mark.django_db
@pytest.mark.parametrize("whose", ["another player's", "unknown"])
def test_a_reservation_not_the_players_is_the_same_404(
    make_player, reservation_in, lean, through_drf, whose
) -> None:
    reservation_id = reservation_in(Status.PENDING).pk if whose != "unknown" else uuid.uuid4()
    client = client_for(make_player())
    assert_same_refusal(
        lean(client, detail_path(reservation_id)),
        through_drf(client, detail_path(reservation_id)),
        status=404,
        code="not_found",
    )


@contextmanager
def database_unreachable() -> Iterator[None]:
    """The default connection reopened against a port where nothing listens."""
    saved = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_without_the_database_both_paths_answer_the_same_503(
    player, reservation_in, lean, through_drf
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a server at a dead port: PostgreSQL's failure, not SQLite's")
    reservation = reservation_in(Status.PROCESSING)
    client = client_for(player)
    assert lean(client, detail_path(reservation.pk)).status == 200  # the token is cached now
    with database_unreachable():
        from_lean = lean(client, detail_path(reservation.pk))
        from_drf = through_drf(client, detail_path(reservation.pk))
    assert_same_refusal(from_lean, from_drf, status=503, code="service_unavailable")
    assert from_lean.headers["Retry-After"] == "5"
    assert lean(client, detail_path(reservation.pk)).status == 200  # and it reconnects


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["lean", "through_drf"])
def test_one_statement_per_read_once_the_token_is_cached(
    player, reservation_in, path, request
) -> None:
    read = request.getfixturevalue(path)  # the lean path and the DRF view alike
    reservation = reservation_in(Status.COMPLETED)
    client = client_for(player)
    read(client, detail_path(reservation.pk))
    with CaptureQueriesContext(connection) as statements:
        assert read(client, detail_path(reservation.pk)).status == 200
    assert len(statements) == 1


@pytest.mark.django_db
def test_the_list_reads_a_page_with_its_tickets_in_two_statements(player, reservation_in) -> None:
    for status in STATUSES:
        reservation_in(status)
    client = client_for(player)
    client.get("/api/v1/reservations/")
    with CaptureQueriesContext(connection) as statements:
        page = client.get("/api/v1/reservations/").json()
    assert len(statements) == 2  # the count and the page
    by_status = {row["status"]: row for row in page["results"]}
    assert by_status["completed"]["tickets"] == [5, 7]
    assert by_status["pending"]["promo_code"] == "SPRING-10"


@pytest.mark.django_db
def test_a_session_request_goes_through_drf_with_the_same_body(
    player, reservation_in, lean
) -> None:
    reservation = reservation_in(Status.COMPLETED)
    session = APIClient()
    session.force_login(player)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detail, "reservation_detail_view", _not_lean)
        from_session = session.get(detail_path(reservation.pk))
    assert from_session.status_code == 200
    assert from_session.content == lean(client_for(player), detail_path(reservation.pk)).body


def _not_lean(*args: object, **kwargs: object) -> None:
    raise AssertionError("the request took the lean path")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"HTTP_ACCEPT": "text/html"}, ""),
        ({"HTTP_ACCEPT": "application/json; indent=4"}, ""),
        ({"HTTP_ACCEPT": "*/*;indent=2"}, ""),
        ({}, "?format=json"),
        ({}, "?format=xml"),
    ],
)
def test_content_negotiation_stays_drfs(
    player, reservation_in, through_drf, headers, query
) -> None:
    reservation = reservation_in(Status.PENDING)
    client = client_for(player)
    expected = through_drf(client, detail_path(reservation.pk) + query, **headers)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detail, "reservation_detail_view", _not_lean)
        taken = answer(
            client.get(detail_path(reservation.pk) + query, HTTP_X_REQUEST_ID=REQUEST_ID, **headers)
        )
    assert taken == expected


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["*/*", "application/json", " application/json "])
def test_plain_json_accepts_take_the_lean_path(player, reservation_in, lean, accept) -> None:
    reservation = reservation_in(Status.PENDING)
    assert lean(client_for(player), detail_path(reservation.pk), HTTP_ACCEPT=accept).status == 200


@pytest.mark.django_db
def test_cancel_answers_the_reservation_as_the_read_does(
    player, make_house, make_promotion, lean
) -> None:
    promotion = make_promotion()
    outcome = reserve_tickets(
        player=player,
        house_id=make_house().pk,
        quantity=2,
        promo_code=promotion.code,
        idempotency_key=uuid.uuid4().hex,
    )
    path = detail_path(outcome.data()["id"])
    client = client_for(player)
    cancelled = client.post(path + "cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["promo_code"] == promotion.code
    assert cancelled.content == lean(client, path).body
