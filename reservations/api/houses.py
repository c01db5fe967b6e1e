"""``GET /houses/`` and ``/houses/{id}/``: public reads, availability from Redis when fresh.

It lives here, not in ``lottery``, because the live availability comes from the
reservations' Redis inventory (apps import only downwards)."""

import re

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.query import reject_repeated
from core.api.schema import PAGE_PARAMETERS, paginated, problems
from core.pagination import DefaultPagination
from lottery import selectors as lottery_selectors
from lottery.models import House
from reservations import selectors

ORDERING_CHOICES = [
    value for field in lottery_selectors.HOUSE_ORDERINGS for value in (field, f"-{field}")
]


PRICE_PATTERN = r"^(?:\d{1,10}(?:\.\d{0,2})?|\.\d{1,2})$"


@extend_schema_field({"type": "string", "format": "decimal", "pattern": PRICE_PATTERN})
class PriceFilterField(serializers.DecimalField):
    """A price bound: digits with at most two decimals, never negative, never empty.

    Exactly what the schema states (``Decimal`` alone would also take ``1e3``, ``+5``
    or ``1_000``)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_digits=12, decimal_places=2, min_value=0, required=False, **kwargs)

    def to_internal_value(self, data: object):
        if not isinstance(data, str) or not re.fullmatch(PRICE_PATTERN, data):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"^[^\x00]+$"})
class CityFilterField(serializers.CharField):
    """Matched as sent (no trimming); DRF refuses NUL characters, so the schema says so."""


class HouseQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[s for s in House.Status.values if s != House.Status.DRAFT], required=False
    )
    city = CityFilterField(max_length=100, required=False, trim_whitespace=False)
    min_price = PriceFilterField()
    max_price = PriceFilterField()
    ordering = serializers.ChoiceField(choices=ORDERING_CHOICES, required=False)

    def to_internal_value(self, data):
        # DRF reads ``?city=`` on an optional field as "not sent"; the schema says a filter
        # has at least one character, so an empty one is refused, not ignored.
        reject_repeated(data, self.fields)
        empty = [name for name in self.fields if data.get(name) == ""]
        if empty:
            raise serializers.ValidationError(
                {name: ["This filter may not be empty."] for name in empty}
            )
        return super().to_internal_value(data)


class HouseSerializer(serializers.ModelSerializer):
    tickets_available = serializers.SerializerMethodField()
    participants = serializers.IntegerField(source="participants_count", read_only=True)
    draw_commitment = serializers.SerializerMethodField()

    class Meta:
        model = House
        fields = [
            "id",
            "title",
            "description",
            "address",
            "city",
            "property_value",
            "status",
            "ticket_price",
            "currency",
            "total_tickets",
            "tickets_sold",
            "tickets_available",
            "participants",
            "participant_cap",
            "min_tickets_per_purchase",
            "max_tickets_per_purchase",
            "min_participation_percent",
            "max_tickets_per_user",
            "sales_start_at",
            "sales_end_at",
            "draw_commitment",
            "created_at",
        ]
        read_only_fields = fields

    def get_tickets_available(self, house: House) -> int:
        live = self.context.get("availability", {}).get(house.pk)
        if live is not None and house.status == House.Status.ACTIVE:
            return live.available
        return house.tickets_available

    def get_draw_commitment(self, house: House) -> str | None:
        return house.draw_commitment or None


class HouseListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="houses_list",
        parameters=[HouseQuerySerializer, *PAGE_PARAMETERS],
        responses={200: paginated(HouseSerializer), **problems(422)},
        tags=["houses"],
    )
    def get(self, request: Request) -> Response:
        query = HouseQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(
            lottery_selectors.house_list(**query.validated_data), request, view=self
        )
        context = {"availability": selectors.live_availability(page)}
        return paginator.get_paginated_response(
            HouseSerializer(page, many=True, context=context).data
        )


class HouseDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="houses_retrieve",
        responses={200: HouseSerializer, **problems(404)},
        tags=["houses"],
    )
    def get(self, request: Request, house_id: int) -> Response:
        house = lottery_selectors.visible_house(house_id)
        context = {"availability": selectors.live_availability([house])}
        return Response(HouseSerializer(house, context=context).data)
