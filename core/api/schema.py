"""OpenAPI helpers: the problem JSON shape and the error responses each endpoint declares."""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
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


# What core.idempotency.read_idempotency_key accepts: 1-255 printable ASCII characters
# (surrounding blanks are not part of a header value).
IDEMPOTENCY_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": r"^[!-~](?:[ -~]*[!-~])?$",
}

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=True,
    type=IDEMPOTENCY_KEY_SCHEMA,
    description="Client-chosen unique key (at most 255 characters); repeating a request "
    "with the same key and body replays the first response.",
)


PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PAGE_PARAMETERS = [
    OpenApiParameter(
        name="page",
        location=OpenApiParameter.QUERY,
        required=False,
        type={"type": "integer", "minimum": 1},
        description="A page number within the paginated result set (from 1; past the "
        "last page: 404).",
    ),
    OpenApiParameter(
        name="page_size",
        location=OpenApiParameter.QUERY,
        required=False,
        type={"type": "integer", "minimum": 1},
        description="Number of results per page (1 or more; above 100 means 100).",
    ),
]


def paginated(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """The ``{count, next, previous, results}`` page of ``core.pagination.DefaultPagination``."""
    name = serializer_class.__name__.removesuffix("Serializer")
    return type(
        f"Paginated{name}List",
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )()


# What every operation can answer, whatever its view declares (see problem_responses_hook).
_DESCRIPTIONS = {
    400: "Problem JSON; code: malformed_request (the body is not JSON)",
    401: "Problem JSON; code: not_authenticated",
    404: "Problem JSON; code: not_found",
    413: "Problem JSON; code: payload_too_large",
    415: "Problem JSON; code: unsupported_media_type",
    422: "Problem JSON; code: validation_error",
    503: "Problem JSON; code: service_unavailable (see Retry-After)",
}


def problem_responses_hook(result: dict, generator, request, public) -> dict:
    """Postprocessing hook: every error answer is ``application/problem+json``.

    It also adds the statuses the shared plumbing gives on every operation of a kind, so no
    view can forget them: 401 when authentication is required, 404 with a path parameter
    or a page number (past the last page), 422 with query parameters (validated), 400/413/
    415/422 with a body (parser, size limit, validation), 503 everywhere (the database or
    Redis unreachable; ``core.middleware.DatabaseUnavailableMiddleware``).
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in schemas:
        from drf_spectacular.openapi import AutoSchema

        schemas["Problem"] = AutoSchema()._map_serializer(ProblemSerializer(), "response")
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            parameters = operation.get("parameters", [])
            statuses = {503}
            security = operation.get("security", [])
            if security and {} not in security:
                statuses.add(401)
            if any(p["in"] == "path" for p in parameters) or any(
                p["in"] == "query" and p["name"] == "page" for p in parameters
            ):
                statuses.add(404)
            if any(p["in"] == "query" for p in parameters):
                statuses.add(422)
            if "requestBody" in operation:
                statuses.update({400, 413, 415, 422})
            responses = operation["responses"]
            for status in statuses:
                responses.setdefault(str(status), {"description": _DESCRIPTIONS[status]})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
            operation["responses"] = dict(sorted(responses.items()))
    return result


OPTIONAL_IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    type=IDEMPOTENCY_KEY_SCHEMA,
    description="Optional; a repeat with the same key replays the first answer.",
)


# What str.strip() removes (DRF trims CharFields with it), as one regex character class.
_PY_WHITESPACE = "".join(f"\\u{code:04x}" for code in range(0x10000) if chr(code).isspace())
NO_NUL = r"^[^\x00]*$"
NOT_BLANK_NO_NUL = rf"^[^\x00]*[^\x00{_PY_WHITESPACE}][^\x00]*$"


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, plus what every DRF ``CharField`` enforces on input.

    DRF refuses NUL characters in any ``CharField`` and, unless ``trim_whitespace=False``
    or ``allow_blank=True``, a value that is only whitespace (blank once trimmed); a free
    text request field says so with a ``pattern``, so clients are not told "any string"."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not isinstance(field, serializers.RegexField)  # its own pattern says it
            and isinstance(schema, dict)
            and schema.get("type") == "string"
            and not {"pattern", "enum", "format"} & schema.keys()
        ):
            blank_refused = field.trim_whitespace and not field.allow_blank
            schema["pattern"] = NOT_BLANK_NO_NUL if blank_refused else NO_NUL
        return schema
