"""``POST /api/v1/reservations/{id}/checkout/``: start paying for a pending reservation."""

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import IDEMPOTENCY_KEY_HEADER, problems
from core.idempotency import idempotent
from purchases.services.checkout import start_checkout
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
    @extend_schema(
        operation_id="reservations_checkout",
        description="Pay for a pending, unexpired reservation. Answers 202 at once; poll "
        "`GET /api/v1/reservations/{id}/` until `completed` (with `tickets`) or `failed` / "
        "`refunded` (with `failure_code`). Requires `Idempotency-Key`.",
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
        reservation = start_checkout(
            player=request.user,
            reservation_id=reservation_id,
            payment_token=payload.validated_data["payment_token"],
        )
        return Response(
            CheckoutAcceptedSerializer(
                {"id": reservation.pk, "status": Reservation.Status.PROCESSING}
            ).data,
            status=status.HTTP_202_ACCEPTED,
        )
