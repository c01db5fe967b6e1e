"""Request id and body-size middleware (outermost, before anything parses)."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.errors import problem_response
from core.exceptions import MalformedRequest, PayloadTooLarge
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
