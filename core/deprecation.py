"""Mark an API view deprecated: responses carry ``Deprecation`` and ``Sunset`` (RFC 9745, 8594)."""

from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from typing import Any


def deprecated(*, since: datetime, sunset: datetime, link: str | None = None) -> Callable:
    """Class decorator for DRF views: every response announces the deprecation."""

    def decorator(view_class: type) -> type:
        original = view_class.finalize_response

        def finalize_response(self: Any, request: Any, response: Any, *args: Any, **kwargs: Any):
            response = original(self, request, response, *args, **kwargs)
            response["Deprecation"] = f"@{int(since.timestamp())}"
            response["Sunset"] = format_datetime(sunset, usegmt=True)
            if link:
                response["Link"] = f'<{link}>; rel="successor-version"'
            return response

        view_class.finalize_response = finalize_response
        view_class.deprecated = True
        return view_class

    return decorator
