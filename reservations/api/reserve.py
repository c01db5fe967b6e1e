"""``POST /api/v1/reservations/``: the hot path, outside DRF's request machinery.

Why not a DRF view: content negotiation, request wrapping, serializers and the
renderer cost more Python per request than the reservation itself (one SQL
statement, see ``reservations.services.reserve``). This view keeps the same
contract through ``core.api.lean.answer_write`` (token authentication through
``CachedTokenAuthentication``, no database query on a cache hit;
``Idempotency-Key`` required; problem JSON), and the OpenAPI schema from
``ReservationCollectionView.post``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions as drf

from core import exceptions as domain
from core.api.lean import answer_write
from core.idempotency import Outcome, request_fingerprint
from reservations import services

MAX_ID = 2**63 - 1
MAX_QUANTITY = 1_000_000
PROMO_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class ReserveRequest:
    house_id: int
    quantity: int
    promo_code: str | None


def reserve_view(request: HttpRequest) -> HttpResponse:
    def write(user: AbstractBaseUser, key: str) -> Outcome:
        payload = parse(request)
        return services.reserve_tickets(
            player=user,
            house_id=payload.house_id,
            quantity=payload.quantity,
            promo_code=payload.promo_code,
            idempotency_key=key,
            fingerprint=request_fingerprint(request.method, request.path, request.body),
        )

    return answer_write(request, write=write, unavailable="Reservations are unavailable.")


def parse(request: HttpRequest) -> ReserveRequest:
    """Validate by hand: the rules of ``ReserveRequestSerializer`` at a tenth of the cost."""
    if request.content_type != "application/json":
        raise drf.UnsupportedMediaType(request.content_type or "none")
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise domain.MalformedRequest() from None
    if not isinstance(data, dict):
        raise domain.MalformedRequest("The request body must be a JSON object.")
    errors: list[dict[str, str]] = []
    house_id = _integer(data, "house_id", MAX_ID, errors)
    quantity = _integer(data, "quantity", MAX_QUANTITY, errors)
    promo_code = _promo_code(data.get("promo_code"), errors)
    if errors:
        raise domain.ValidationFailed(errors)
    return ReserveRequest(house_id=house_id, quantity=quantity, promo_code=promo_code)


def _integer(data: dict[str, Any], field: str, maximum: int, errors: list) -> int:
    value = data.get(field)
    if value is None:
        errors.append({"field": field, "code": "required", "message": "This field is required."})
    elif isinstance(value, bool) or not isinstance(value, int):
        errors.append({"field": field, "code": "invalid", "message": "A whole number is required."})
    elif value < 1:
        errors.append({"field": field, "code": "min_value", "message": "Must be at least 1."})
    elif value > maximum:
        errors.append(
            {"field": field, "code": "max_value", "message": f"Must be at most {maximum}."}
        )
    else:
        return value
    return 0


def _promo_code(value: Any, errors: list) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 40 or set(value) - PROMO_CODE_CHARS:
        errors.append(
            {
                "field": "promo_code",
                "code": "invalid",
                "message": "At most 40 letters, digits, '-' or '_'.",
            }
        )
        return None
    return value
