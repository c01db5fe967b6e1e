"""OpenAPI helpers: the problem JSON shape and the error responses each endpoint declares."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ProblemFieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, sent as ``application/problem+json``."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    request_id = serializers.CharField(allow_null=True)
    errors = ProblemFieldErrorSerializer(many=True, required=False)


ERROR_CODES: dict[int, str] = {
    400: "malformed_request",
    401: "not_authenticated",
    403: "permission_denied, account_not_verified, account_suspended",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict codes (sold_out, participant_cap_reached, sales_closed, invalid_state, "
    "idempotency_key_in_progress)",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error, purchase_limit_exceeded, promotion_invalid, idempotency_key_reused",
    429: "rate_limited (see Retry-After)",
    503: "service_unavailable (see Retry-After)",
}


def problems(*statuses: int, codes: dict[int, str] | None = None) -> dict[int, OpenApiResponse]:
    """Error responses for ``extend_schema(responses=...)``; ``codes`` narrows the listed codes."""
    codes = codes or {}
    return {
        status: OpenApiResponse(
            ProblemSerializer,
            description=f"Problem JSON; code: {codes.get(status, ERROR_CODES[status])}",
        )
        for status in statuses
    }


IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=True,
    type=str,
    description="Client-chosen unique key (at most 255 characters); repeating a request "
    "with the same key and body replays the first response.",
)
