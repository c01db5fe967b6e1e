"""Request id and body-size middleware (outermost, before anything parses), and the
503 answer for a lost database connection in views outside DRF (admin, plain views)."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.errors import DATABASE_UNAVAILABLE, log_database_unavailable, problem_response
from core.exceptions import MalformedRequest, PayloadTooLarge, ServiceUnavailable
from core.request_context import accept_or_generate, bind_request_id

REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Accept a safe client ``X-Request-ID`` or make one; echo it; bind it for logs and tasks."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accept_or_generate(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        bind_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            bind_request_id(None)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestBodyLimitMiddleware:
    """Refuse bodies over ``MAX_REQUEST_BODY_BYTES`` with 413 before anything reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.limit = settings.MAX_REQUEST_BODY_BYTES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            return problem_response(MalformedRequest("Content-Length is not a number."))
        if length > self.limit:
            return problem_response(
                PayloadTooLarge(f"The request body must be at most {self.limit} bytes.")
            )
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A view that lost its database connection answers 503 with ``Retry-After``, not 500.

    DRF views get the same answer from ``problem_exception_handler``; this covers the
    admin and plain Django views. Django closes the broken connection when the
    request ends, so the next request reconnects.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        log_database_unavailable(exception)
        error = ServiceUnavailable("The database is unavailable; retry shortly.")
        if request.path.startswith("/api/"):
            return problem_response(error)
        response = HttpResponse(
            "Service unavailable: the database cannot be reached. Retry shortly.",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = error.headers["Retry-After"]
        return response
