"""RFC 9457 problem JSON for every error under /api/.

One place turns exceptions into problem bodies: DRF views go through
``problem_exception_handler``; plain Django views and middleware call
``problem_response``; Django's own 400/403/404/500 handlers do the same for
API paths. Unknown exceptions become 500 ``internal_error`` without details,
and their traceback goes to the log with the request id.
"""

import json
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions as drf
from rest_framework.response import Response

from core import exceptions as domain
from core.request_context import get_request_id

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
# A lost, refused or terminated database connection: the next request reconnects.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:raffle:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": get_request_id(),
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(error: domain.DomainError) -> HttpResponse:
    """A plain Django response for a domain error (views outside DRF, middleware)."""
    body = problem_body(
        status=error.status_code,
        code=error.code,
        title=error.title,
        detail=str(error.detail),
        errors=getattr(error, "errors", None),
    )
    response = HttpResponse(
        json.dumps(body), status=error.status_code, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in error.headers.items():
        response[name] = value
    return response


def _flatten_validation_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error dict -> ``[{field, code, message}]``."""
    if isinstance(detail, dict):
        flat: list[dict[str, str]] = []
        for field, value in detail.items():
            name = "" if field in ("non_field_errors", "__all__") else str(field)
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            flat.extend(_flatten_validation_errors(value, path))
        return flat
    if isinstance(detail, list):
        flat = []
        for index, item in enumerate(detail):
            if isinstance(item, (dict, list)):
                flat.extend(
                    _flatten_validation_errors(item, f"{prefix}.{index}" if prefix else str(index))
                )
            else:
                flat.extend(_flatten_validation_errors(item, prefix))
        return flat
    return [
        {
            "field": prefix or None,
            "code": getattr(detail, "code", None) or "invalid",
            "message": str(detail),
        }
    ]


_DRF_CODES: list[tuple[type[Exception], int, str, str]] = [
    (drf.ParseError, 400, "malformed_request", "Malformed request"),
    (drf.AuthenticationFailed, 401, "not_authenticated", "Not authenticated"),
    (drf.NotAuthenticated, 401, "not_authenticated", "Not authenticated"),
    (drf.PermissionDenied, 403, "permission_denied", "Permission denied"),
    (drf.NotFound, 404, "not_found", "Not found"),
    (drf.MethodNotAllowed, 405, "method_not_allowed", "Method not allowed"),
    (drf.NotAcceptable, 406, "not_acceptable", "Not acceptable"),
    (drf.UnsupportedMediaType, 415, "unsupported_media_type", "Unsupported media type"),
    (drf.Throttled, 429, "rate_limited", "Too many requests"),
]


def as_domain_error(exc: Exception) -> domain.DomainError | None:
    """Map any known exception to a DomainError; None means 'unexpected'."""
    if isinstance(exc, domain.DomainError):
        return exc
    if isinstance(exc, (Http404, drf.NotFound)):
        return domain.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return domain.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return domain.PayloadTooLarge()
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return domain.ServiceUnavailable("The database is unavailable; retry shortly.")
    if isinstance(exc, Ratelimited):
        return domain.RateLimited(headers={"Retry-After": "60"})
    if isinstance(exc, drf.ValidationError):
        return domain.ValidationFailed(_flatten_validation_errors(exc.detail))
    for exc_type, status, code, title in _DRF_CODES:
        if isinstance(exc, exc_type):
            error = domain.DomainError(_safe_detail(exc))
            error.status_code, error.code, error.title = status, code, title
            if isinstance(exc, drf.Throttled) and exc.wait:
                error.headers["Retry-After"] = str(int(exc.wait) + 1)
            return error
    return None


def _safe_detail(exc: drf.APIException) -> str:
    # DRF's own messages are fixed strings written for clients; never str(exc)
    # of an arbitrary exception.
    detail = exc.detail
    return str(detail) if isinstance(detail, str) else str(exc.default_detail)


def internal_error() -> domain.DomainError:
    error = domain.DomainError("An unexpected error occurred; it has been logged.")
    error.status_code, error.code, error.title = 500, "internal_error", "Internal server error"
    return error


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    error = as_domain_error(exc)
    if isinstance(exc, DATABASE_UNAVAILABLE):
        log_database_unavailable(exc)
    if error is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        error = internal_error()
    response = Response(
        problem_body(
            status=error.status_code,
            code=error.code,
            title=error.title,
            detail=str(error.detail),
            errors=getattr(error, "errors", None),
        ),
        status=error.status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    for name, value in error.headers.items():
        if value:
            response[name] = value
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        response["WWW-Authenticate"] = 'Token realm="api"'
    return response


def log_database_unavailable(exc: Exception) -> None:
    # Expected during failovers and restarts: one line, no traceback, no client detail.
    logger.warning("database unavailable: %s: %s", type(exc).__name__, str(exc).strip()[:200])


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return problem_response(domain.MalformedRequest("The request could not be understood."))
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return problem_response(domain.PermissionDenied())
    return defaults.permission_denied(request, exception)


class ApiNotFoundMiddleware:
    """A 404 under /api/ is problem JSON with DEBUG on too.

    With DEBUG on (``make run``) Django answers an unrouted URL (``/api/v1/houses/abc/``)
    with its HTML debug page and never calls ``handler404``; this gives the same answer
    as production. With DEBUG off every API 404 is problem JSON already: nothing changes.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 404
            and _is_api(request)
            and not response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            return problem_response(domain.NotFound())
        return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return problem_response(domain.NotFound())
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return problem_response(internal_error())
    return defaults.server_error(request)
