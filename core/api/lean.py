"""The request cycle of the hot endpoints (reserve, checkout, the polled read), outside DRF.

Why not DRF there: content negotiation, request wrapping and the renderer cost
more Python per request than the work itself (see ``reservations.api.reserve``).
The contract stays DRF's: token authentication through
``CachedTokenAuthentication`` (no query on a cache hit), ``Idempotency-Key``
required on writes, problem JSON for every refusal, 503 when the database is gone.
"""

import logging
from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.renderers import JSONRenderer

from core import exceptions as domain
from core.authentication import CachedTokenAuthentication
from core.errors import (
    DATABASE_UNAVAILABLE,
    as_domain_error,
    log_database_unavailable,
    problem_response,
)
from core.idempotency import REPLAYED_HEADER, Outcome, read_idempotency_key

logger = logging.getLogger(__name__)
_authenticator = CachedTokenAuthentication()
_json_renderer = JSONRenderer()


def authenticate(request: HttpRequest) -> AbstractBaseUser:
    result = _authenticator.authenticate(request)  # raises AuthenticationFailed on a bad token
    if result is None:
        raise domain.NotAuthenticated()
    return result[0]


def answer_write(
    request: HttpRequest,
    *,
    write: Callable[[AbstractBaseUser, str], Outcome],
    unavailable: str,
) -> HttpResponse:
    """Authenticate, read the key, run ``write(user, key)`` and send its stored answer."""
    try:
        outcome = write(authenticate(request), read_idempotency_key(request, required=True))
    except (OperationalError, InterfaceError):
        # The database decides every write: without it, refuse safely and say so.
        logger.exception("%s %s: database unavailable", request.method, request.path)
        return problem_response(domain.ServiceUnavailable(unavailable))
    except (domain.DomainError, drf.APIException) as exc:
        return refusal(exc)
    response = HttpResponse(outcome.body, status=outcome.status, content_type=outcome.content_type)
    if outcome.replayed:
        response[REPLAYED_HEADER] = "true"
    return response


def answer_read(
    request: HttpRequest, *, read: Callable[[AbstractBaseUser], HttpResponse]
) -> HttpResponse:
    """Authenticate and send ``read(user)``'s answer; refusals as DRF's exception handler."""
    try:
        return read(authenticate(request))
    except DATABASE_UNAVAILABLE as exc:
        log_database_unavailable(exc)
        return refusal(exc)
    except (domain.DomainError, drf.APIException) as exc:
        return refusal(exc)


def refusal(exc: Exception) -> HttpResponse:
    """Problem JSON for a known exception; a 401 names the scheme, as DRF's views do."""
    error = as_domain_error(exc)
    response = problem_response(error)
    if error.status_code == 401:
        response["WWW-Authenticate"] = 'Token realm="api"'
    return response


def json_response(data: object, *, headers: dict[str, str] | None = None) -> HttpResponse:
    """200 with ``data`` in the bytes DRF's JSONRenderer gives ``Accept: application/json``."""
    return HttpResponse(
        _json_renderer.render(data), content_type=_json_renderer.media_type, headers=headers
    )
