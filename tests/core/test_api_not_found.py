"""An unknown URL under /api/ answers problem JSON 404 whether DEBUG is on or off.

With DEBUG on (``make run``'s embedded mode) Django's own answer is its HTML
debug page; schemathesis found it for 9 of 861 cases (``/api/v1/houses/abc/``).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.embedded import embedded_env

pytestmark = pytest.mark.django_db
PROJECT_ROOT = Path(__file__).resolve().parents[2]
UNROUTED = ["/api/v1/houses/abc/", "/api/v1/nothing-here/", "/api/v1/reservations/not-a-uuid/"]


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", UNROUTED)
def test_unrouted_api_url_is_problem_json_404(client, settings, debug, path) -> None:
    settings.DEBUG = debug
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/problem+json"
    body = answer.json()
    assert (body["status"], body["code"]) == (404, "not_found")
    assert body["request_id"] == answer["X-Request-ID"]


def test_a_page_outside_the_api_keeps_djangos_404(client, settings) -> None:
    settings.DEBUG = True
    answer = client.get("/no-such-page/")
    assert answer.status_code == 404
    assert answer["Content-Type"].startswith("text/html")


def test_a_missing_trailing_slash_still_redirects(client, settings) -> None:
    settings.DEBUG = False
    answer = client.get("/api/v1/houses")
    assert answer.status_code == 301 and answer["Location"] == "/api/v1/houses/"


EMBEDDED_404 = """
import json
from django.test import Client
answer = Client().get("/api/v1/houses/abc/", HTTP_HOST="127.0.0.1")
print(json.dumps([answer.status_code, answer["Content-Type"], answer.json()["code"]]))
"""


def test_embedded_mode_answers_an_unrouted_api_url_like_the_real_stack(tmp_path) -> None:
    """``make run``: DEBUG on by default, SQLite, no Redis."""
    env = embedded_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", EMBEDDED_404],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        404,
        "application/problem+json",
        "not_found",
    ]
