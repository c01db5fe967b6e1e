"""Typed access to environment variables that never crashes settings import.

Bad values fall back to the default and are recorded in ``CONFIG_ERRORS``;
``core.checks`` turns each one into a system-check error naming the variable,
so ``manage.py check`` (and every server start) says exactly what is wrong.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

# Optional .env next to manage.py; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

CONFIG_ERRORS: list[tuple[str, str]] = []

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def is_set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    CONFIG_ERRORS.append((name, f"must be a boolean (1/0, true/false), got {raw!r}"))
    return default


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        CONFIG_ERRORS.append((name, f"must be an integer, got {raw!r}"))
        return default
    if minimum is not None and value < minimum:
        CONFIG_ERRORS.append((name, f"must be at least {minimum}, got {value}"))
        return default
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default) or default
    if value not in choices:
        CONFIG_ERRORS.append((name, f"must be one of {', '.join(choices)}, got {value!r}"))
        return default
    return value


def env_rate(name: str, default: str) -> str:
    """A django-ratelimit rate such as ``10/m``."""
    value = env_str(name, default) or default
    count, _, period = value.partition("/")
    if not count.isdigit() or not period or period[-1] not in "smhd":
        CONFIG_ERRORS.append((name, f"must look like 10/m (count/s|m|h|d), got {value!r}"))
        return default
    return value


def database_config(name: str, default: str) -> dict:
    url = env_str(name, default) or default
    try:
        config = environ.Env.db_url_config(url)
    except Exception:  # django-environ raises several types for bad URLs
        CONFIG_ERRORS.append(
            (name, "is not a valid database URL (postgres://... or sqlite:///...)")
        )
        return environ.Env.db_url_config(default)
    if config.get("ENGINE") not in (
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    ):
        CONFIG_ERRORS.append((name, "must be a postgres:// or sqlite:/// URL"))
        return environ.Env.db_url_config(default)
    return config


def redis_url(name: str) -> str:
    url = env_str(name)
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        CONFIG_ERRORS.append((name, "must be a redis://, rediss:// or unix:// URL"))
        return ""
    return url


CONSOLE_EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
SMTP_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def email_config() -> dict:
    """Django's EMAIL_* settings: ``EMAIL_URL``, else ``EMAIL_HOST``/..., else the console.

    ``EMAIL_URL`` is a django-environ email URL (``smtp://``, ``smtp+tls://``,
    ``smtps://``, ``consolemail://``); ``EMAIL_BACKEND``, when set, wins.
    """
    config: dict = {
        "EMAIL_BACKEND": CONSOLE_EMAIL_BACKEND,
        "EMAIL_HOST": "localhost",
        "EMAIL_PORT": 25,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
    }
    url = env_str("EMAIL_URL")
    if url:
        try:
            parsed = environ.Env.email_url_config(url)
        except Exception:  # django-environ raises several types for bad URLs
            CONFIG_ERRORS.append(
                ("EMAIL_URL", "is not a valid email URL (smtp://, smtp+tls://, smtps://...)")
            )
        else:
            config.update({k: v for k, v in parsed.items() if k in config})
    elif is_set("EMAIL_HOST"):
        config.update(
            EMAIL_BACKEND=SMTP_EMAIL_BACKEND,
            EMAIL_HOST=env_str("EMAIL_HOST"),
            EMAIL_PORT=env_int("EMAIL_PORT", 25, minimum=1),
            EMAIL_HOST_USER=env_str("EMAIL_HOST_USER"),
            EMAIL_HOST_PASSWORD=env_str("EMAIL_HOST_PASSWORD"),
            EMAIL_USE_TLS=env_bool("EMAIL_USE_TLS", False),
            EMAIL_USE_SSL=env_bool("EMAIL_USE_SSL", False),
        )
    if config["EMAIL_USE_TLS"] and config["EMAIL_USE_SSL"]:
        CONFIG_ERRORS.append(("EMAIL_USE_TLS", "and EMAIL_USE_SSL cannot both be on"))
        config["EMAIL_USE_SSL"] = False
    config["EMAIL_BACKEND"] = env_str("EMAIL_BACKEND") or config["EMAIL_BACKEND"]
    return config
