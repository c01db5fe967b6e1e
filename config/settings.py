"""Settings for the house-raffle backend, read from the environment.

With nothing set the project runs on embedded defaults (SQLite, in-process
tasks, local-memory cache). ``DATABASE_URL`` and ``REDIS_URL`` switch on the
real stack. Every variable is documented in docs/configuration.md.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from config.beat import BEAT_SCHEDULE
from config.env import (
    BASE_DIR,
    CONFIG_ERRORS,
    database_config,
    email_config,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_rate,
    env_str,
    is_set,
    redis_url,
)

DEBUG = env_bool("DEBUG", True)

# Development key only when DEBUG is on; core.checks refuses to run production
# without a strong SECRET_KEY, so this random fallback is never served.
SECRET_KEY = env_str("SECRET_KEY") or (
    "dev-only-insecure-key-change-me-0123456789abcdefghijklmnop"
    if DEBUG
    else "unset-" + secrets.token_urlsafe(48)
)
SECRET_KEY_IS_SET = is_set("SECRET_KEY")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "core",
    "lottery",
    "reservations",
    "payments",
    "purchases",
    "draws",
    "watchlist",
    "console",
]

MIDDLEWARE = [
    "core.observability.RequestMetricsMiddleware",  # outermost: times everything below
    "core.middleware.RequestIdMiddleware",
    "core.errors.ApiNotFoundMiddleware",  # problem JSON 404 under /api/ with DEBUG on too
    "core.middleware.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASES = {"default": database_config("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Persistent connections: reconnecting per request costs ~2.5x on the hot path.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 600, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
USES_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache ---------------------------------------------------------
REDIS_URL = redis_url("REDIS_URL")
# Redis calls on request paths must fail fast so the database fall-back and
# fail-closed answers happen in milliseconds, not after a TCP timeout.
REDIS_SOCKET_TIMEOUT = env_int("REDIS_SOCKET_TIMEOUT_MS", 250, minimum=1) / 1000
# The inventory is only an accelerator: past this, the reserve path asks PostgreSQL alone.
INVENTORY_REDIS_TIMEOUT = env_int("INVENTORY_REDIS_TIMEOUT_MS", 50, minimum=1) / 1000
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "raffle"),
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Embedded mode: a single-process local cache is good enough to try things.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# --- Celery ---------------------------------------------------------------
CELERY_BROKER_URL = redis_url("CELERY_BROKER_URL") or REDIS_URL
# No broker configured: run tasks in-process so `make run` needs nothing else.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_MAX_RUNTIME_SECONDS = env_int("CELERY_TASK_MAX_RUNTIME_SECONDS", 300, minimum=1)
BEAT_HEARTBEAT_MAX_AGE_SECONDS = env_int("BEAT_HEARTBEAT_MAX_AGE_SECONDS", 120, minimum=1)
# The periodic jobs (declared in config/beat.py), read by core.beat_schedule through
# settings so that core never imports config.
PERIODIC_JOBS = BEAT_SCHEDULE

# Every worker writes its heartbeat every WORKER_HEARTBEAT_INTERVAL_SECONDS (10 s, core.health).
WORKER_HEARTBEAT_MAX_AGE_SECONDS = env_int("WORKER_HEARTBEAT_MAX_AGE_SECONDS", 60, minimum=1)

# --- Domain limits --------------------------------------------------------
RESERVATION_TTL = timedelta(seconds=env_int("RESERVATION_TTL_SECONDS", 600, minimum=1))
# Prefer: wait=N holds a web thread; off (0) unless the web tier runs threads (docs/api.md).
RESERVATION_WAIT_MAX_SECONDS = env_int("RESERVATION_WAIT_MAX_SECONDS", 0, minimum=0)
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 64 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
IDEMPOTENCY_KEY_TTL = timedelta(hours=env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24, minimum=1))
PAYMENT_GATEWAY = env_choice("PAYMENT_GATEWAY", "sandbox", ("sandbox", "http"))
PAYMENT_SERVICE_URL = env_str("PAYMENT_SERVICE_URL")
# --- Payments, refunds, checkout recovery (docs/payments.md) ---------------
PAYMENT_SERVICE_TIMEOUT = env_int("PAYMENT_SERVICE_TIMEOUT_MS", 5000, minimum=1) / 1000
PAYMENT_SERVICE_CONNECT_TIMEOUT = (
    env_int("PAYMENT_SERVICE_CONNECT_TIMEOUT_MS", 1000, minimum=1) / 1000
)
PAYMENT_SERVICE_RETRIES = env_int("PAYMENT_SERVICE_RETRIES", 2, minimum=0)
# Charges of one checkout batch in flight at once at a remote gateway (1: one by one).
PAYMENT_CHARGE_CONCURRENCY = env_int("PAYMENT_CHARGE_CONCURRENCY", 10, minimum=1)
PAYMENT_BREAKER_FAILURES = env_int("PAYMENT_BREAKER_FAILURES", 5, minimum=1)
PAYMENT_BREAKER_RESET_SECONDS = env_int("PAYMENT_BREAKER_RESET_SECONDS", 30, minimum=1)
SANDBOX_REFUND_FAILURES = env_int("SANDBOX_REFUND_FAILURES", 2, minimum=0)
# Soak faults of the sandbox gateway: percent of charge calls failing / timing out after charging.
SANDBOX_CHARGE_FAILURE_PERCENT = env_int("SANDBOX_CHARGE_FAILURE_PERCENT", 0, minimum=0)
SANDBOX_CHARGE_TIMEOUT_PERCENT = env_int("SANDBOX_CHARGE_TIMEOUT_PERCENT", 0, minimum=0)
REFUND_MAX_ATTEMPTS = env_int("REFUND_MAX_ATTEMPTS", 5, minimum=1)
REFUND_RETRY_BASE_SECONDS = env_int("REFUND_RETRY_BASE_SECONDS", 60, minimum=1)
CHECKOUT_STUCK_AFTER = timedelta(seconds=env_int("CHECKOUT_STUCK_AFTER_SECONDS", 600, minimum=1))
# --- Draws (docs/draws.md, DRAWS.md) ----------------------------------------
# drand: the runner fetches the fixed beacon round itself; manual: staff conduct every draw.
DRAW_ENTROPY_SOURCE = env_choice("DRAW_ENTROPY_SOURCE", "drand", ("drand", "manual"))
# drand HTTP relays, tried in order. The default is the League of Entropy's public relays:
# public endpoints of a public protocol (like the chain hash and key in draws/verify.py).
DRAW_BEACON_URLS = env_list(
    "DRAW_BEACON_URLS",
    ["https://api.drand.sh", "https://api2.drand.sh", "https://drand.cloudflare.com"],
)
DRAW_BEACON_TIMEOUT_SECONDS = env_int("DRAW_BEACON_TIMEOUT_SECONDS", 5, minimum=1)
DRAW_BEACON_ATTEMPTS = env_int("DRAW_BEACON_ATTEMPTS", 3, minimum=1)
# The beacon round is the first one at least this long after the ticket list froze.
DRAW_BEACON_DELAY_SECONDS = env_int("DRAW_BEACON_DELAY_SECONDS", 300, minimum=0)
DRAW_ALTERNATES = env_int("DRAW_ALTERNATES", 3, minimum=0)
# Keys the per-house pseudonymous holder ids of the frozen lists; never leaves the server.
DRAW_HOLDER_KEY = (
    env_str("DRAW_HOLDER_KEY")
    or hmac.new(SECRET_KEY.encode(), b"draws.holder-key", hashlib.sha256).hexdigest()
)
# How long a closed house waits for its pending and processing purchases before the
# runner nudges expiry and stuck-checkout recovery (it freezes once none is in flight).
DRAW_FREEZE_WAIT_SECONDS = env_int("DRAW_FREEZE_WAIT_SECONDS", 900, minimum=0)
# --- Email: notifications (docs/notifications.md) ------------------------------
# Console backend unless EMAIL_URL or EMAIL_HOST is set (tests use locmem).
_EMAIL = email_config()
EMAIL_BACKEND = _EMAIL["EMAIL_BACKEND"]
EMAIL_HOST = _EMAIL["EMAIL_HOST"]
EMAIL_PORT = _EMAIL["EMAIL_PORT"]
EMAIL_HOST_USER = _EMAIL["EMAIL_HOST_USER"]
EMAIL_HOST_PASSWORD = _EMAIL["EMAIL_HOST_PASSWORD"]
EMAIL_USE_TLS = _EMAIL["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _EMAIL["EMAIL_USE_SSL"]
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_SECONDS", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "House raffle <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# A notification pending or mid-send for longer than this is queued again by the sweep.
NOTIFICATION_STALLED_AFTER_SECONDS = env_int("NOTIFICATION_STALLED_AFTER_SECONDS", 600, minimum=60)
# Fault injection points (core.failpoints) for crash tests; never on in production.
FAILPOINTS_ENABLED = env_bool("FAILPOINTS_ENABLED", False)
METRICS_TOKEN = env_str("METRICS_TOKEN")

RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
RATELIMIT_USE_CACHE = "default"
RATE_LIMIT_TOKEN_PER_IP = env_rate("RATE_LIMIT_TOKEN_PER_IP", "30/m")
RATE_LIMIT_TOKEN_PER_USERNAME = env_rate("RATE_LIMIT_TOKEN_PER_USERNAME", "10/m")
RATE_LIMIT_REGISTER_PER_IP = env_rate("RATE_LIMIT_REGISTER_PER_IP", "20/h")
RATE_LIMIT_ADMIN_LOGIN_PER_IP = env_rate("RATE_LIMIT_ADMIN_LOGIN_PER_IP", "20/m")
RATE_LIMIT_ADMIN_LOGIN_PER_USERNAME = env_rate("RATE_LIMIT_ADMIN_LOGIN_PER_USERNAME", "5/m")

# --- Security -------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve static files (admin, Swagger UI assets) from the app in every mode.
WHITENOISE_USE_FINDERS = True

# --- DRF ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.DefaultPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "core.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
TOKEN_CACHE_SECONDS = env_int("TOKEN_CACHE_SECONDS", 60, minimum=0)

SPECTACULAR_SETTINGS = {
    "TITLE": "House raffle API",
    "DESCRIPTION": "Numbered tickets for house raffles: reserve, pay, verify the draw.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every error answer is problem JSON; statuses the shared plumbing gives are added.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.problem_responses_hook",
    ],
    # Several models name their choices "Status": give each enum its own name.
    "ENUM_NAME_OVERRIDES": {
        "HouseStatusEnum": "lottery.models.House.Status",
        "TicketStatusEnum": "purchases.models.Ticket.Status",
        "ReservationStatusEnum": "reservations.models.Reservation.Status",
        "AccountStatusEnum": "lottery.models.PlayerProfile.AccountStatus",
        "DrawStatusEnum": "draws.models.Draw.Status",
        "EntropySourceEnum": "draws.models.Draw.EntropySource",
    },
}

# --- Logging --------------------------------------------------------------
LOG_FORMAT = env_choice("LOG_FORMAT", "text", ("text", "json"))
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Our problem-JSON handler logs 5xx with the request id; Django's own
        # request logger would print the same traceback a second time.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

CONFIG_ERRORS_AT_IMPORT = list(CONFIG_ERRORS)
