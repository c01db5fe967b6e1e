import time
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import (
    IDEMPOTENCY_KEY_HEADER,
    OPTIONAL_IDEMPOTENCY_KEY_HEADER,
    PAGE_PARAMETERS,
    paginated,
    problems,
)
from core.idempotency import idempotent
from core.pagination import DefaultPagination
from reservations import selectors, services, waiting
from reservations.api.reserve import reserve_view
from reservations.api.serializers import (
    ReservationCreatedSerializer,
    ReservationSerializer,
    ReserveRequestSerializer,
)
from reservations.models import Reservation

OPTIONAL_IDEMPOTENCY_KEY = OPTIONAL_IDEMPOTENCY_KEY_HEADER


class ReservationCollectionView(APIView):
    """GET lists the player's reservations (DRF); POST reserves (the hot path, see dispatch)."""

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.method == "POST":
            # The reserve endpoint bypasses DRF's request cycle: see reservations.api.reserve.
            return reserve_view(request)
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="reservations_list",
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(ReservationSerializer), **problems(401)},
        tags=["reservations"],
    )
    def get(self, request: Request) -> Response:
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(
            selectors.reservations_with_tickets(selectors.reservations_of(request.user)),
            request,
            view=self,
        )
        return paginator.get_paginated_response(ReservationSerializer(page, many=True).data)

    @extend_schema(
        operation_id="reservations_create",
        description="Reserve tickets of one house for `RESERVATION_TTL` (10 minutes by "
        "default). Requires `Authorization: Token ...` and `Idempotency-Key`; a repeat with "
        "the same key and body replays the first answer with `Idempotent-Replayed: true`.",
        request=ReserveRequestSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        responses={
            201: ReservationCreatedSerializer,
            **problems(
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                422,
                503,
                codes={
                    409: "sold_out, participant_cap_reached, sales_closed, "
                    "idempotency_key_in_progress",
                    422: "validation_error, purchase_limit_exceeded, promotion_invalid, "
                    "idempotency_key_reused",
                },
            ),
        },
        tags=["reservations"],
    )
    def post(self, request: Request) -> HttpResponse:
        return reserve_view(request._request)  # never reached via dispatch; kept for the schema


PREFER_HEADER = OpenApiParameter(
    name="Prefer",
    location=OpenApiParameter.HEADER,
    required=False,
    type=str,
    description="`wait=N` (RFC 7240, N seconds, at most the server's "
    f"`RESERVATION_WAIT_MAX_SECONDS`, never more than {waiting.MAX_WAIT_SECONDS}; 0, the "
    "default, ignores it): while the reservation is `processing`, answer as soon as its "
    "checkout settles, or after N seconds with it still `processing`. Other preferences "
    "are ignored.",
)


def requested_wait(request: Request) -> int:
    """Seconds asked for by ``Prefer: wait=N`` (0 when absent or malformed), capped.

    A held request holds a web thread: the server honours waits only up to
    ``RESERVATION_WAIT_MAX_SECONDS``, 0 (never) unless its web tier runs threads.
    """
    allowed = min(settings.RESERVATION_WAIT_MAX_SECONDS, waiting.MAX_WAIT_SECONDS)
    for preference in request.headers.get("Prefer", "").split(","):
        name, _, value = preference.split(";")[0].partition("=")
        if name.strip().lower() == "wait" and value.strip().isdigit():
            return min(int(value.strip()), allowed)
    return 0


class ReservationDetailView(APIView):
    @extend_schema(
        operation_id="reservations_retrieve",
        description="One of the player's reservations. With `Prefer: wait=N` a `processing` "
        "reservation is answered once its checkout settles (`completed`, `failed`, ...) or "
        "after N seconds, in one request instead of polling; the answer then carries "
        "`Preference-Applied: wait=N`.",
        parameters=[
            PREFER_HEADER,
            OpenApiParameter(
                name="Preference-Applied",
                location=OpenApiParameter.HEADER,
                type=str,
                response=[200],
                description="`wait=N` when the request waited on the checkout.",
            ),
        ],
        responses={200: ReservationSerializer, **problems(401, 404)},
        tags=["reservations"],
    )
    def get(self, request: Request, reservation_id: uuid.UUID) -> Response:
        reservation = selectors.reservation_of(request.user, reservation_id)
        wait = requested_wait(request)
        waited = wait and reservation.status == Reservation.Status.PROCESSING
        if waited:
            deadline = time.monotonic() + wait
            while reservation.status == Reservation.Status.PROCESSING:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                waiting.wait_for_settlement(reservation.pk, left)
                reservation = selectors.reservation_of(request.user, reservation_id)
        response = Response(ReservationSerializer(reservation).data)
        if waited:
            response["Preference-Applied"] = f"wait={wait}"
        return response


class ReservationCancelView(APIView):
    @extend_schema(
        operation_id="reservations_cancel",
        request=None,
        parameters=[OPTIONAL_IDEMPOTENCY_KEY],
        responses={
            200: OpenApiResponse(ReservationSerializer, description="Cancelled."),
            **problems(401, 404, 409, 422, codes={409: "invalid_state (not pending)"}),
        },
        tags=["reservations"],
    )
    @idempotent(required=False)
    def post(self, request: Request, reservation_id: uuid.UUID) -> Response:
        reservation = services.cancel_reservation(
            player=request.user, reservation_id=reservation_id
        )
        return Response(ReservationSerializer(reservation).data)
