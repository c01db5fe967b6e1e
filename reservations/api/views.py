import uuid

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
from reservations.api import detail
from reservations.api.reserve import reserve_view
from reservations.api.serializers import (
    ReservationCreatedSerializer,
    ReservationSerializer,
    ReserveRequestSerializer,
)

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


class ReservationDetailView(APIView):
    """GET one reservation: DRF, or for a token request the lean path (see dispatch)."""

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if detail.takes_lean_path(request):
            # The polled read bypasses DRF's request cycle: see reservations.api.detail.
            response = detail.reservation_detail_view(request, kwargs["reservation_id"])
            response["Allow"] = ", ".join(self.allowed_methods)  # as DRF adds to every answer
            return response
        return super().dispatch(request, *args, **kwargs)

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
        body, headers = detail.reservation_answer(request, request.user, reservation_id)
        return Response(body, headers=headers)


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
        services.cancel_reservation(player=request.user, reservation_id=reservation_id)
        # Read back as every reservation answer is rendered: with its tickets and promo code.
        reservation = selectors.reservation_of(request.user, reservation_id)
        return Response(ReservationSerializer(reservation).data)
