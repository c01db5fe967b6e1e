"""The request cycle of the hot write endpoints (reserve, checkout), outside DRF.

Why not DRF there: content negotiation, request wrapping and the renderer cost
more Python per request than the write itself (see ``reservations.api.reserve``).
The contract stays DRF's: token authentication through
``CachedTokenAuthentication`` (no query on a cache hit), ``Idempotency-Key``
required, problem JSON for every refusal, 503 when the database is gone.
"""

import logging
from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions as drf

from core import exceptions as domain
from core.authentication import CachedTokenAuthentication
from core.errors import as_domain_error, problem_response
from core.idempotency import REPLAYED_HEADER, Outcome, read_idempotency_key

logger = logging.getLogger(__name__)
_authenticator = CachedTokenAuthentication()


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
        error = as_domain_error(exc)
        response = problem_response(error)
        if error.status_code == 401:
            response["WWW-Authenticate"] = 'Token realm="api"'
        return response
    response = HttpResponse(outcome.body, status=outcome.status, content_type=outcome.content_type)
    if outcome.replayed:
        response[REPLAYED_HEADER] = "true"
    return response
