"""Start-up checks name the bad variable; production refuses weak secrets and passes --deploy."""

import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k3y-" + "x9Qw7LmN2pRt5VbZ8cYh4JdF6gKs1AeU3oIiP0uTyRwEqMnBvCxZ" * 2


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env={**clean_env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_embedded_defaults_pass_the_checks():
    result = manage("check")
    assert result.returncode == 0, result.stderr


def test_production_without_secret_key_is_refused():
    result = manage("check", DEBUG="0", REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG=0" in result.stderr


def test_production_with_a_weak_secret_key_is_refused():
    result = manage("check", DEBUG="0", SECRET_KEY="short", REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_production_refuses_fault_injection():
    result = manage(
        "check",
        DEBUG="0",
        SECRET_KEY=STRONG_KEY,
        REDIS_URL="redis://127.0.0.1:6379/0",
        FAILPOINTS_ENABLED="1",
    )
    assert result.returncode != 0
    assert "FAILPOINTS_ENABLED must not be set when DEBUG=0" in result.stderr


def test_bad_values_are_named_by_variable():
    result = manage("check", RESERVATION_TTL_SECONDS="ten", DATABASE_URL="mysql://x/y")
    assert result.returncode != 0
    assert "RESERVATION_TTL_SECONDS must be an integer" in result.stderr
    assert "DATABASE_URL must be a postgres:// or sqlite:/// URL" in result.stderr


def test_http_gateway_needs_its_url():
    result = manage("check", PAYMENT_GATEWAY="http")
    assert result.returncode != 0
    assert "PAYMENT_SERVICE_URL must be set" in result.stderr


def test_production_settings_pass_check_deploy_without_warnings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="raffle.example",
        REDIS_URL="redis://127.0.0.1:6379/0",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/raffle",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_gunicorn_entry_point_refuses_bad_configuration():
    result = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DEBUG": "0", "SECRET_KEY": "", "REDIS_URL": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG=0" in result.stderr


ME_IN_EMBEDDED_MODE = """
import json
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient
from lottery.models import PlayerProfile
user = get_user_model().objects.create_user("embedded", password="x")
PlayerProfile.objects.filter(user=user).update(is_verified=True)
client = APIClient()
client.force_authenticate(user)
print(json.dumps(client.get("/api/v1/me/", HTTP_HOST="127.0.0.1").json()))
"""


def test_embedded_mode_answers_me_exactly_like_the_real_stack(tmp_path):
    """SQLite has no boolean type and gives naive datetimes: /me/ must not show either."""
    import json

    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}"}
    assert manage("migrate", "--no-input", "-v", "0", **env).returncode == 0
    result = manage("shell", "-c", ME_IN_EMBEDDED_MODE, **env)
    assert result.returncode == 0, result.stderr
    me = json.loads(result.stdout.strip().splitlines()[-1])

    assert me["is_verified"] is True and me["notifications"] is True
    assert me["date_joined"].endswith("Z")
