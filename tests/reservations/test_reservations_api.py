"""The reservations API contract: idempotency, problem JSON, own data only."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reservations.models import Reservation
from tests.conftest import client_for
from tests.reservations.conftest import synced

URL = "/api/v1/reservations/"


def _reserve(client, house_id: int, quantity: int = 1, key: str | None = None, **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key or uuid.uuid4().hex}
    return client.post(
        URL, {"house_id": house_id, "quantity": quantity, **extra}, format="json", **headers
    )


def test_reserve_answers_201_with_the_contract_fields(player_client, make_house) -> None:
    house = make_house()
    response = _reserve(player_client, house.pk, 2)
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {
        "id",
        "house_id",
        "quantity",
        "unit_price",
        "discount",
        "total_price",
        "currency",
        "status",
        "expires_at",
    }
    assert body["status"] == "pending" and body["currency"] == "EUR"


def test_reserve_requires_an_idempotency_key(player_client, make_house) -> None:
    house = make_house()
    response = player_client.post(URL, {"house_id": house.pk, "quantity": 1}, format="json")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not Reservation.objects.exists()


def test_same_key_and_body_replays_with_the_header(player_client, make_house) -> None:
    house = make_house()
    first = _reserve(player_client, house.pk, 2, key="abc")
    again = _reserve(player_client, house.pk, 2, key="abc")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Reservation.objects.count() == 1


def test_same_key_with_another_body_is_422(player_client, make_house) -> None:
    house = make_house()
    _reserve(player_client, house.pk, 2, key="abc")
    response = _reserve(player_client, house.pk, 3, key="abc")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"


def test_key_still_in_progress_is_409(player, player_client, make_house) -> None:
    from django.utils import timezone

    from core.idempotency import request_fingerprint
    from core.models import IdempotencyRecord

    house = make_house()
    body = f'{{"house_id": {house.pk}, "quantity": 1}}'.encode()
    now = timezone.now()
    IdempotencyRecord.objects.create(
        user=player,
        key="busy",
        fingerprint=request_fingerprint("POST", URL, body),
        created_at=now,
        expires_at=now + timezone.timedelta(hours=1),
    )
    response = player_client.generic(
        "POST", URL, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="busy"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_progress"


def test_reserve_without_credentials_is_401(api_client, make_house) -> None:
    house = make_house()
    response = _reserve(api_client, house.pk)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_bad_token_is_401(api_client, make_house) -> None:
    house = make_house()
    api_client.credentials(HTTP_AUTHORIZATION="Token nope")
    assert _reserve(api_client, house.pk).status_code == 401


def test_domain_refusals_are_problem_json(player_client, make_house) -> None:
    house = make_house(total_tickets=1)
    _reserve(player_client, house.pk, 1)
    response = _reserve(player_client, house.pk, 1)
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "sold_out"
    assert response.json()["request_id"]


def test_unverified_player_gets_403(make_player, make_house) -> None:
    house = make_house()
    response = _reserve(client_for(make_player(is_verified=False)), house.pk)
    assert response.status_code == 403
    assert response.json()["code"] == "account_not_verified"


def test_sold_out_answer_reads_only_the_idempotency_key(
    player_client, make_house, make_player
) -> None:
    """Redis refuses; PostgreSQL is asked only whether this key already has an outcome."""
    house = make_house(total_tickets=2)
    synced()
    assert _reserve(player_client, house.pk, 2).status_code == 201  # warms the token cache too
    with CaptureQueriesContext(connection) as queries:
        response = _reserve(player_client, house.pk, 1)
    assert response.status_code == 409 and response.json()["code"] == "sold_out"
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert "FROM core_idempotencyrecord WHERE user_id" in queries[0]["sql"]


def test_players_see_only_their_own_reservations(player_client, make_player, make_house) -> None:
    house = make_house()
    mine = _reserve(player_client, house.pk).json()
    other_client = client_for(make_player())
    theirs = _reserve(other_client, house.pk).json()
    listed = player_client.get(URL).json()
    assert [r["id"] for r in listed["results"]] == [mine["id"]]
    assert player_client.get(f"{URL}{theirs['id']}/").status_code == 404
    assert player_client.post(f"{URL}{theirs['id']}/cancel/").status_code == 404
    detail = player_client.get(f"{URL}{mine['id']}/").json()
    assert detail["status"] == "pending" and detail["tickets"] == []


def test_list_is_newest_first(player_client, make_house) -> None:
    house = make_house()
    ids = [_reserve(player_client, house.pk).json()["id"] for _ in range(3)]
    listed = [r["id"] for r in player_client.get(URL).json()["results"]]
    assert listed == list(reversed(ids))


def test_cancel_releases_the_tickets_and_only_once(player_client, make_house) -> None:
    house = make_house(total_tickets=3)
    reservation = _reserve(player_client, house.pk, 3).json()
    response = player_client.post(f"{URL}{reservation['id']}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = player_client.post(f"{URL}{reservation['id']}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"
    house.refresh_from_db()
    assert (house.tickets_reserved, house.participants_count) == (0, 0)
    assert _reserve(player_client, house.pk, 3).status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_request"),
        (b"[1, 2]", "application/json", 400, "malformed_request"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, "malformed_request"),
        (b'{"house_id": 1, "quantity": 1}', "text/plain", 415, "unsupported_media_type"),
        (b'{"house_id": "1", "quantity": 1}', "application/json", 422, "validation_error"),
        (b'{"house_id": 1, "quantity": true}', "application/json", 422, "validation_error"),
        (b'{"house_id": 1}', "application/json", 422, "validation_error"),
    ],
)
def test_bad_bodies_are_4xx_problems(player_client, body, content_type, status, code) -> None:
    response = player_client.generic(
        "POST", URL, body, content_type=content_type, HTTP_IDEMPOTENCY_KEY="x"
    )
    assert response.status_code == status
    assert response.json()["code"] == code


def test_schema_documents_the_reserve_endpoint(api_client, db) -> None:
    schema = api_client.get("/api/v1/schema/?format=json").json()
    post = schema["paths"]["/api/v1/reservations/"]["post"]
    assert "201" in post["responses"] and "409" in post["responses"]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in post["parameters"])
    assert "/api/v1/houses/" in schema["paths"]


@pytest.mark.django_db(transaction=True)
def test_database_down_is_503_never_a_reservation(player_client, make_house) -> None:
    from django.db import connection

    house = make_house()
    assert _reserve(player_client, house.pk).status_code == 201  # token now cached
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"  # nothing listens there: connecting fails
    try:
        response = _reserve(player_client, house.pk)
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable" and response["Retry-After"]
    assert Reservation.objects.filter(house=house).count() == 1
