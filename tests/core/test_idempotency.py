"""Idempotency-Key: replay, reuse with another body, in progress, expiry."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import path
from django.utils import timezone
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as real_urlpatterns
from core import exceptions as domain
from core.idempotency import idempotent
from core.models import IdempotencyRecord
from core.services import purge_expired_idempotency_keys
from tests.conftest import client_for

calls: list[dict] = []
first_request_started = threading.Event()
release_first_request = threading.Event()


class CountingView(APIView):
    """Records each real execution so a replay can be told from a second run."""

    @idempotent()
    def post(self, request):
        calls.append(request.data)
        if request.data.get("block"):
            first_request_started.set()
            release_first_request.wait(timeout=10)
        if request.data.get("refuse"):
            raise domain.SoldOut()
        if request.data.get("invalid"):
            raise domain.ValidationFailed([{"field": "x", "code": "invalid", "message": "bad"}])
        return Response({"call": len(calls)}, status=status.HTTP_201_CREATED)


urlpatterns = [path("api/v1/_test/idem/", CountingView.as_view()), *real_urlpatterns]
URL = "/api/v1/_test/idem/"


@pytest.fixture(autouse=True)
def test_urls(settings):
    settings.ROOT_URLCONF = __name__
    calls.clear()
    first_request_started.clear()
    release_first_request.clear()


def post(client, body, key="key-1"):
    return client.post(URL, data=body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_same_key_and_body_replays_the_stored_response(player_client):
    first = post(player_client, {"a": 1})
    second = post(player_client, {"a": 1})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() == {"call": 1}
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert len(calls) == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_rejected(player_client):
    post(player_client, {"a": 1})
    response = post(player_client, {"a": 2})
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert len(calls) == 1


@pytest.mark.django_db
def test_keys_are_scoped_per_user(player_client, make_player):
    other_client = client_for(make_player())
    post(player_client, {"a": 1})
    response = post(other_client, {"a": 2})
    assert response.status_code == 201
    assert len(calls) == 2


@pytest.mark.django_db
def test_missing_key_is_a_validation_error(player_client):
    response = player_client.post(URL, data={"a": 1}, format="json")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "Idempotency-Key"
    assert calls == []


@pytest.mark.django_db
def test_business_refusal_is_replayed_not_rerun(player_client):
    first = post(player_client, {"refuse": True})
    second = post(player_client, {"refuse": True})
    assert first.status_code == second.status_code == 409
    assert second.json()["code"] == "sold_out"
    assert second["Idempotent-Replayed"] == "true"
    assert len(calls) == 1


@pytest.mark.django_db
def test_validation_failure_releases_the_key(player_client):
    assert post(player_client, {"invalid": True}).status_code == 422
    assert post(player_client, {"invalid": True}).status_code == 422
    assert len(calls) == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_expired_key_runs_the_request_again(player_client):
    post(player_client, {"a": 1})
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = post(player_client, {"a": 1})
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert len(calls) == 2


@pytest.mark.django_db
def test_purge_removes_only_expired_keys(player_client):
    post(player_client, {"a": 1}, key="old")
    post(player_client, {"a": 1}, key="fresh")
    IdempotencyRecord.objects.filter(key="old").update(
        expires_at=timezone.now() - timedelta(hours=1)
    )
    assert purge_expired_idempotency_keys() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]


@pytest.mark.django_db(transaction=True)
def test_same_key_while_first_request_runs_is_in_progress(player):
    """Two real concurrent requests: the second arrives while the first is still running."""
    results: dict[str, object] = {}

    def first_request():
        try:
            results["first"] = post(client_for(player), {"block": True})
        finally:
            connection.close()

    worker = threading.Thread(target=first_request)
    worker.start()
    try:
        assert first_request_started.wait(timeout=10)
        second = post(client_for(player), {"block": True})
    finally:
        release_first_request.set()
        worker.join(timeout=15)
    assert second.status_code == 409
    assert second.json()["code"] == "idempotency_key_in_progress"
    assert results["first"].status_code == 201
    assert len(calls) == 1
    # Once the first finished, the same request is a replay.
    third = post(client_for(player), {"block": True})
    assert third.status_code == 201
    assert third["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_claim_abandoned_by_a_dead_request_is_taken_over(player_client, player):
    from core.idempotency import request_fingerprint

    body = b'{"a": 1}'
    IdempotencyRecord.objects.create(
        user=player,
        key="key-1",
        fingerprint=request_fingerprint("POST", URL, body),
        created_at=timezone.now() - timedelta(minutes=6),
        expires_at=timezone.now() + timedelta(hours=23),
    )
    response = player_client.post(
        URL, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="key-1"
    )
    assert response.status_code == 201
    assert len(calls) == 1
    assert IdempotencyRecord.objects.get().status == IdempotencyRecord.Status.COMPLETED
