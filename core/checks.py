"""System checks that validate the environment and name the bad variable.

They run with every ``manage.py`` command, when the WSGI app loads and when a
Celery worker starts, so a misconfigured process refuses to start.
"""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from core.health import WORKER_HEARTBEAT_INTERVAL_SECONDS

CONFIG_TAG = "config"


@checks.register(CONFIG_TAG)
def check_environment(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = [
        checks.Error(f"{name} {problem}.", id="core.E001", hint="See docs/configuration.md.")
        for name, problem in settings.CONFIG_ERRORS_AT_IMPORT
    ]
    if not settings.DEBUG:
        errors.extend(_production_checks())
    if settings.PAYMENT_GATEWAY == "http" and not settings.PAYMENT_SERVICE_URL:
        errors.append(
            checks.Error(
                "PAYMENT_SERVICE_URL must be set when PAYMENT_GATEWAY=http.", id="core.E004"
            )
        )
    errors.extend(_heartbeat_checks())
    errors.extend(_draw_checks())
    return errors


def _draw_checks() -> list[checks.CheckMessage]:
    errors = [
        checks.Error(
            f"DRAW_BEACON_URLS must hold http:// or https:// URLs, got {url!r}.",
            id="core.E008",
            hint="See docs/configuration.md.",
        )
        for url in settings.DRAW_BEACON_URLS
        if not url.startswith(("http://", "https://"))
    ]
    return errors


def _heartbeat_checks() -> list[checks.CheckMessage]:
    minimum = 2 * WORKER_HEARTBEAT_INTERVAL_SECONDS
    if minimum > settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS:
        return [
            checks.Error(
                f"WORKER_HEARTBEAT_MAX_AGE_SECONDS must be at least {minimum}: workers write "
                f"their heartbeat every {WORKER_HEARTBEAT_INTERVAL_SECONDS} s.",
                id="core.E007",
            )
        ]
    return []


def _production_checks() -> list[checks.CheckMessage]:
    errors = []
    key = settings.SECRET_KEY
    if not settings.SECRET_KEY_IS_SET:
        errors.append(
            checks.Error(
                "SECRET_KEY must be set when DEBUG=0.",
                hint="Generate one: python -c 'import secrets; print(secrets.token_urlsafe(50))'",
                id="core.E002",
            )
        )
    elif len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure-"):
        errors.append(
            checks.Error(
                "SECRET_KEY is too weak: use at least 50 random characters.",
                id="core.E003",
            )
        )
    if settings.FAILPOINTS_ENABLED:
        errors.append(
            checks.Error(
                "FAILPOINTS_ENABLED must not be set when DEBUG=0: it lets Redis kill processes.",
                id="core.E006",
            )
        )
    if not settings.REDIS_URL:
        errors.append(
            checks.Error(
                "REDIS_URL must be set when DEBUG=0: rate limits and the inventory "
                "need a shared cache.",
                id="core.E005",
            )
        )
    return errors


def raise_on_configuration_errors() -> None:
    """For processes that do not run ``manage.py`` checks (gunicorn, celery)."""
    problems = [m for m in checks.run_checks(tags=[CONFIG_TAG]) if m.is_serious()]
    if problems:
        raise ImproperlyConfigured("; ".join(m.msg for m in problems))
