"""``/api/v1/watchlist/``: thin views over watchlist services and selectors."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import OPTIONAL_IDEMPOTENCY_KEY_HEADER, PAGE_PARAMETERS, paginated, problems
from core.idempotency import idempotent
from core.pagination import DefaultPagination
from reservations.selectors import live_availability
from watchlist import selectors, services
from watchlist.api.serializers import WatchlistItemSerializer, WatchRequestSerializer

OPTIONAL_IDEMPOTENCY_KEY = OPTIONAL_IDEMPOTENCY_KEY_HEADER
PLAYER_CHECK_CODES = {403: "account_not_verified, account_suspended"}


class WatchlistView(APIView):
    @extend_schema(
        operation_id="watchlist_list",
        parameters=PAGE_PARAMETERS,
        description="The player's watched houses, newest first, with live availability.",
        responses={
            200: paginated(WatchlistItemSerializer),
            **problems(401, 403, 503, codes=PLAYER_CHECK_CODES),
        },
        tags=["watchlist"],
    )
    def get(self, request: Request) -> Response:
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(selectors.watchlist_of(request.user), request, view=self)
        context = {"availability": live_availability([item.house for item in page])}
        return paginator.get_paginated_response(
            WatchlistItemSerializer(page, many=True, context=context).data
        )

    @extend_schema(
        operation_id="watchlist_add",
        description="Watch a house: 201 the first time, 200 when it is already watched.",
        request=WatchRequestSerializer,
        parameters=[OPTIONAL_IDEMPOTENCY_KEY],
        responses={
            201: OpenApiResponse(WatchlistItemSerializer, description="Now watched."),
            200: OpenApiResponse(WatchlistItemSerializer, description="Already watched."),
            **problems(400, 401, 403, 404, 409, 413, 415, 422, 503, codes=PLAYER_CHECK_CODES),
        },
        tags=["watchlist"],
    )
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        serializer = WatchRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item, created = services.watch_house(
            player=request.user, house_id=serializer.validated_data["house_id"]
        )
        context = {"availability": live_availability([item.house])}
        return Response(
            WatchlistItemSerializer(item, context=context).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class WatchlistItemView(APIView):
    @extend_schema(
        operation_id="watchlist_remove",
        request=None,
        responses={
            204: OpenApiResponse(description="No longer watched."),
            **problems(401, 403, 404, 503, codes=PLAYER_CHECK_CODES),
        },
        tags=["watchlist"],
    )
    def delete(self, request: Request, house_id: int) -> Response:
        services.unwatch_house(player=request.user, house_id=house_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
