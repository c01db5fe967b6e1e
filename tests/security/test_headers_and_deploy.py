"""Production settings: ``check --deploy`` is clean, and every answer carries the security headers.

Settings are read once at start-up, so production is a subprocess with
``DEBUG=0`` (the same environment as ``tests/core/test_configuration.py``'s
``check --deploy`` test, which this repeats for the security suite).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k3y-" + "x9Qw7LmN2pRt5VbZ8cYh4JdF6gKs1AeU3oIiP0uTyRwEqMnBvCxZ" * 2
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "raffle.example",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/raffle",
}

FETCH_HEADERS = """
import json, django
django.setup()
from django.test import Client
client = Client()
answers = {
    "https live": client.get("/health/live/", secure=True, HTTP_HOST="raffle.example"),
    "https api 401": client.get("/api/v1/me/", secure=True, HTTP_HOST="raffle.example"),
    "http api": client.get("/api/v1/me/", HTTP_HOST="raffle.example"),
}
print(json.dumps({name: [a.status_code, dict(a.headers)] for name, a in answers.items()}))
"""


def production(*args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env={**env, **PRODUCTION, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_in_production_settings() -> None:
    result = production("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_security_headers_on_api_and_health_answers_in_production() -> None:
    result = production("-c", FETCH_HEADERS)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("https live", "https api 401"):
        status, headers = answers[name]
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["X-Frame-Options"] == "DENY", name
        assert headers["Referrer-Policy"] == "same-origin", name
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000"), name
        assert "includeSubDomains" in headers["Strict-Transport-Security"], name
    assert answers["https api 401"][0] == 401
    status, headers = answers["http api"]
    assert status == 301 and headers["Location"].startswith("https://raffle.example/")
