"""Rate limits on the shared cache (django-ratelimit), failing closed.

When the cache cannot be reached the limit cannot be evaluated, so the request
is refused with 503 ``service_unavailable`` rather than let through.
"""

import logging
from collections.abc import Callable

from django.http import HttpRequest
from django_ratelimit.core import get_usage
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from core import exceptions as domain

logger = logging.getLogger(__name__)

CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)


def enforce_rate_limit(
    request: HttpRequest,
    *,
    group: str,
    rate: str,
    key: str | Callable[[str, HttpRequest], str],
) -> None:
    """Count this request against ``rate`` per ``key``; raise 429 or 503 when refused."""
    try:
        usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    except CACHE_ERRORS:
        logger.warning("rate limit %s could not be evaluated: cache unreachable", group)
        raise domain.ServiceUnavailable("Rate limiting is unavailable; retry shortly.") from None
    if usage is None:
        return  # rate limiting switched off (RATELIMIT_ENABLE=0)
    if usage["limit"] == 0:
        # django-ratelimit's own fail-closed answer: the count could not be read.
        raise domain.ServiceUnavailable("Rate limiting is unavailable; retry shortly.")
    if usage["should_limit"]:
        retry_after = max(int(usage["time_left"]), 1)
        raise domain.RateLimited(headers={"Retry-After": str(retry_after)})


def client_ip(group: str, request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a proxy
    # in front rewrites it, which is a deployment decision (docs/configuration.md).
    return request.META.get("REMOTE_ADDR", "")


def body_username(group: str, request: HttpRequest) -> str:
    data = getattr(request, "data", None)
    username = data.get("username") if isinstance(data, dict) else None
    return str(username).strip().lower()[:150] if username else ""
