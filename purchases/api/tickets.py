"""``GET /api/v1/me/tickets/``: the player's own tickets."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from core.api.schema import problems
from purchases import selectors
from purchases.models import Ticket


class MyTicketSerializer(serializers.ModelSerializer):
    house_id = serializers.IntegerField(source="house.id", read_only=True)
    house_title = serializers.CharField(source="house.title", read_only=True)
    reservation_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Ticket
        fields = [
            "id",
            "house_id",
            "house_title",
            "ticket_number",
            "status",
            "issued_at",
            "reservation_id",
        ]
        read_only_fields = fields


class MyTicketsView(ListAPIView):
    """The player's own tickets, paginated."""

    serializer_class = MyTicketSerializer

    def get_queryset(self):
        return selectors.player_tickets(user_id=self.request.user.pk)

    @extend_schema(
        operation_id="me_tickets",
        responses={200: MyTicketSerializer(many=True), **problems(401)},
        tags=["players"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
