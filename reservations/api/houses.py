"""``GET /houses/`` and ``/houses/{id}/``: public reads, availability from Redis when fresh.

It lives here, not in ``lottery``, because the live availability comes from the
reservations' Redis inventory (apps import only downwards)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import problems
from core.pagination import DefaultPagination
from lottery import selectors as lottery_selectors
from lottery.models import House
from reservations import selectors

ORDERING_CHOICES = [
    value for field in lottery_selectors.HOUSE_ORDERINGS for value in (field, f"-{field}")
]


class HouseQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[s for s in House.Status.values if s != House.Status.DRAFT], required=False
    )
    city = serializers.CharField(max_length=100, required=False)
    min_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False
    )
    max_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False
    )
    ordering = serializers.ChoiceField(choices=ORDERING_CHOICES, required=False)


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
        parameters=[HouseQuerySerializer],
        responses={200: HouseSerializer(many=True), **problems(422)},
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
