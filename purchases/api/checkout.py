"""``POST /api/v1/reservations/{id}/checkout/``: start paying for a pending reservation.

A request authenticated by token takes the lean path (``checkout_view``), like
``POST /reservations/``: no DRF request cycle, the ``Idempotency-Key`` answer
stored in the checkout's own transaction (``start_checkout_once``) instead of a
separate claim, the body validated by the same serializer. Anything else
(a browser session, no credentials) goes through DRF, whose session
authentication enforces CSRF. Both answer the same contract, documented below.
"""

import json
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions as drf
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import exceptions as domain
from core.api.lean import answer_write
from core.api.schema import IDEMPOTENCY_KEY_HEADER, problems
from core.idempotency import Outcome, idempotent, request_fingerprint
from purchases.services.checkout import start_checkout, start_checkout_once
from reservations.models import Reservation


class CheckoutRequestSerializer(serializers.Serializer):
    payment_token = serializers.CharField(
        max_length=255, help_text="Card token from the payment provider's widget."
    )


class CheckoutAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=Reservation.Status.choices, help_text="Always `processing` here."
    )


class ReservationCheckoutView(APIView):
    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.method == "POST" and request.headers.get("Authorization", "").startswith(
            "Token "
        ):
            return checkout_view(request, kwargs["reservation_id"])
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="reservations_checkout",
        description="Pay for a pending, unexpired reservation. Answers 202 at once; get "
        "`GET /api/v1/reservations/{id}/` with `Prefer: wait=N` (or poll it) until "
        "`completed` (with `tickets`) or `failed` / `refunded` (with `failure_code`). "
        "Requires `Idempotency-Key`.",
        request=CheckoutRequestSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        responses={
            202: CheckoutAcceptedSerializer,
            **problems(
                400,
                401,
                403,
                404,
                409,
                422,
                503,
                codes={
                    409: "invalid_state (not pending, or expired), idempotency_key_in_progress",
                    422: "validation_error, idempotency_key_reused",
                },
            ),
        },
        tags=["reservations"],
    )
    @idempotent(required=True)
    def post(self, request: Request, reservation_id: uuid.UUID) -> Response:
        payload = CheckoutRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        start_checkout(
            player=request.user,
            reservation_id=reservation_id,
            payment_token=payload.validated_data["payment_token"],
        )
        return Response(
            CheckoutAcceptedSerializer(
                {"id": reservation_id, "status": Reservation.Status.PROCESSING}
            ).data,
            status=status.HTTP_202_ACCEPTED,
        )


def checkout_view(request: HttpRequest, reservation_id: uuid.UUID) -> HttpResponse:
    def write(user: AbstractBaseUser, key: str) -> Outcome:
        payload = CheckoutRequestSerializer(data=parse(request))
        payload.is_valid(raise_exception=True)
        return start_checkout_once(
            player=user,
            reservation_id=reservation_id,
            payment_token=payload.validated_data["payment_token"],
            idempotency_key=key,
            fingerprint=request_fingerprint(request.method, request.path, request.body),
        )

    return answer_write(request, write=write, unavailable="Checkout is unavailable.")


def parse(request: HttpRequest) -> object:
    """The JSON body as DRF's parser would give it: no body is ``{}``."""
    if not request.body:
        return {}
    if request.content_type != "application/json":
        raise drf.UnsupportedMediaType(request.content_type or "none")
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise domain.MalformedRequest() from None
