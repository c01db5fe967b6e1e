"""The OpenAPI schema is true: a bounded schemathesis run finds nothing.

Every schemathesis check, coverage + fuzzing + stateful phases, derandomized, against a
live server (DEBUG off, as pytest-django runs it) with the demo data, authenticated as
the verified player alice; and the same run against ``make run``'s embedded mode. The
long run is ``tests/load/schema_fuzz.py``
(``docs/reliability.md``).
"""

import socket
import subprocess
import sys
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from tests.embedded import embedded_env
from tests.load.schema_fuzz import ROOT, fetch_token, run_schemathesis


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_failure(live_server) -> None:
    call_command("seed_demo", verbosity=0)
    token, _ = Token.objects.get_or_create(user=get_user_model().objects.get(username="alice"))
    result = run_schemathesis(live_server.url, token.key, cases=5, deterministic=True, timeout=120)
    assert result.cases > 200, result.output
    assert (result.returncode, result.failures, result.errors) == (0, 0, 0), result.output


# What the runs found, pinned one by one (fast, no server).


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "?city=",  # empty filter: the schema says minLength 1
        "?min_price=",
        "?min_price=-1",  # never negative
        "?min_price=1e3",  # Decimal would take it, the schema's pattern does not
        "?city=a&city=b",  # one value per parameter
        "?page_size=null",
        "?page_size=0",
        "?page_size=3&page_size=4",
    ],
)
def test_house_list_refuses_what_the_schema_forbids(api_client, query) -> None:
    response = api_client.get("/api/v1/houses/" + query)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["?page=", "?page=0", "?page=last", "?page=9"])
def test_a_page_that_is_not_there_is_404(api_client, query) -> None:
    response = api_client.get("/api/v1/houses/" + query)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_house_list_is_the_documented_page(api_client, make_house) -> None:
    make_house()
    body = api_client.get("/api/v1/houses/?city=" + "%20" * 3).json()
    assert set(body) == {"count", "next", "previous", "results"}


def test_notifications_take_json_booleans_only(player_client) -> None:
    for value in (0, 1, "true", "yes"):
        response = player_client.patch("/api/v1/me/", {"notifications": value}, format="json")
        assert response.status_code == 422, value


def test_a_blank_optional_idempotency_key_is_refused(player_client, make_house) -> None:
    house = make_house()
    response = player_client.post(
        "/api/v1/watchlist/", {"house_id": house.pk}, format="json", HTTP_IDEMPOTENCY_KEY=" "
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_every_error_response_is_documented_as_problem_json() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "503" in responses, (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
    houses = schema["paths"]["/api/v1/houses/"]["get"]["responses"]["200"]
    assert houses["content"]["application/json"]["schema"]["$ref"].endswith("PaginatedHouseList")


def test_the_embedded_mode_passes_the_same_run(tmp_path) -> None:
    """``make run``'s defaults (SQLite, DEBUG on, in-process tasks, no Redis) answer alike."""
    env = embedded_env(tmp_path)
    # The fuzzer registers and logs in far more often than a person: as in the long run.
    env |= {f"RATE_LIMIT_{name}": "100000/m" for name in ("TOKEN_PER_IP", "TOKEN_PER_USERNAME")}
    env["RATE_LIMIT_REGISTER_PER_IP"] = "100000/h"
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--noinput", "-v", "0"], ["seed_demo"]):
        subprocess.run([*manage, *command], cwd=ROOT, env=env, check=True, capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        token = _token_when_up(base_url)
        result = run_schemathesis(base_url, token, cases=5, deterministic=True, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert result.cases > 200, result.output
    assert (result.returncode, result.failures, result.errors) == (0, 0, 0), result.output


def _token_when_up(base_url: str) -> str:
    for _ in range(150):
        try:
            return fetch_token(base_url, "alice", "player-demo-password")
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the embedded server did not start")
