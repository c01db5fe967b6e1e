"""Every error under /api/ is problem JSON with a stable code and no leaked text."""

import json

import pytest
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as real_urlpatterns
from core import exceptions as domain

SECRET_TEXT = "psycopg.errors.UndefinedTable: relation secret_table does not exist"


class ExplodingView(APIView):
    permission_classes = []
    authentication_classes = []

    def get(self, request):
        raise RuntimeError(SECRET_TEXT)


class SoldOutView(APIView):
    permission_classes = []
    authentication_classes = []

    def post(self, request):
        raise domain.SoldOut()

    def get(self, request):
        return Response({"ok": True})


def plain_django_explosion(request):
    raise RuntimeError(SECRET_TEXT)


urlpatterns = [
    path("api/v1/_test/explode/", ExplodingView.as_view()),
    path("api/v1/_test/plain-explode/", plain_django_explosion),
    path("api/v1/_test/sold-out/", SoldOutView.as_view()),
    *real_urlpatterns,
]
handler404 = "core.errors.page_not_found"
handler500 = "core.errors.server_error"

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response["X-Request-ID"]
    assert SECRET_TEXT not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    return body


@pytest.fixture
def test_urls(settings):
    settings.ROOT_URLCONF = __name__


@pytest.mark.django_db
def test_unhandled_exception_in_drf_view_is_internal_error_without_details(
    client, test_urls, caplog
):
    response = client.get("/api/v1/_test/explode/", HTTP_X_REQUEST_ID="trace-500")
    assert_problem(response, 500, "internal_error")
    # The traceback goes to the log, tagged with the request id.
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and SECRET_TEXT in str(logged[0].exc_info[1])
    assert logged[0].request_id == "trace-500"


@pytest.mark.django_db
def test_unhandled_exception_in_plain_django_view_is_internal_error(test_urls):
    from django.test import Client

    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/_test/plain-explode/")
    assert response.status_code == 500
    body = json.loads(response.content)
    assert body["code"] == "internal_error"
    assert SECRET_TEXT not in response.content.decode()


@pytest.mark.django_db
def test_unknown_api_path_is_not_found(client):
    assert_problem(client.get("/api/v1/no-such-thing/"), 404, "not_found")


@pytest.mark.django_db
def test_wrong_method_is_method_not_allowed(player_client, test_urls):
    response = player_client.delete("/api/v1/_test/sold-out/")
    assert_problem(response, 405, "method_not_allowed")


@pytest.mark.django_db
def test_domain_error_keeps_its_code(client, test_urls):
    assert_problem(client.post("/api/v1/_test/sold-out/"), 409, "sold_out")


@pytest.mark.django_db
def test_missing_credentials_are_not_authenticated(client):
    response = client.get("/api/v1/me/")
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.django_db
def test_bad_token_is_not_authenticated(client):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_problem(response, 401, "not_authenticated")


@pytest.mark.django_db
def test_malformed_json_is_malformed_request(client):
    response = client.post(
        "/api/v1/auth/register/", data='{"username": "x",', content_type="application/json"
    )
    assert_problem(response, 400, "malformed_request")


@pytest.mark.django_db
def test_deeply_nested_json_is_malformed_request_not_500(client):
    body = "[" * 5000 + "]" * 5000
    response = client.post("/api/v1/auth/register/", data=body, content_type="application/json")
    assert_problem(response, 400, "malformed_request")


@pytest.mark.django_db
def test_validation_error_lists_each_field(client):
    response = client.post(
        "/api/v1/auth/register/",
        data={"username": "", "email": "not-an-email"},
        content_type="application/json",
    )
    body = assert_problem(response, 422, "validation_error")
    fields = {error["field"]: error["code"] for error in body["errors"]}
    assert fields == {"username": "blank", "email": "invalid", "password": "required"}


@pytest.mark.django_db
def test_unsupported_media_type(client):
    response = client.post("/api/v1/auth/register/", data="a=b", content_type="text/plain")
    assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.django_db
def test_body_over_the_limit_is_payload_too_large_before_parsing(client, settings):
    body = json.dumps({"username": "x" * (settings.MAX_REQUEST_BODY_BYTES + 10)})
    response = client.post("/api/v1/auth/register/", data=body, content_type="application/json")
    assert_problem(response, 413, "payload_too_large")


@pytest.mark.django_db
def test_non_api_paths_keep_html_errors(client):
    response = client.get("/not-an-api-page/")
    assert response.status_code == 404
    assert "problem+json" not in response["Content-Type"]
