from rest_framework import serializers

from reservations.models import Reservation


class ReserveRequestSerializer(serializers.Serializer):
    """Documents ``POST /reservations/``; the hot path validates with ``api.reserve.parse``."""

    house_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)
    promo_code = serializers.RegexField(
        r"^[A-Za-z0-9_-]{1,40}\Z", required=False, allow_null=True, allow_blank=True
    )


class ReservationCreatedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    house_id = serializers.IntegerField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    discount = serializers.DecimalField(max_digits=14, decimal_places=2)
    total_price = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=Reservation.Status.choices)
    expires_at = serializers.DateTimeField()


class ReservationSerializer(serializers.ModelSerializer):
    house_id = serializers.IntegerField(read_only=True)
    promo_code = serializers.SerializerMethodField()
    tickets = serializers.SerializerMethodField()

    class Meta:
        model = Reservation
        fields = [
            "id",
            "house_id",
            "quantity",
            "unit_price",
            "discount",
            "total_price",
            "currency",
            "promo_code",
            "status",
            "expires_at",
            "processed_at",
            "failure_code",
            "tickets",
            "created_at",
        ]
        read_only_fields = fields

    def get_promo_code(self, reservation: Reservation) -> str | None:
        return reservation.promotion.code if reservation.promotion_id else None

    def get_tickets(self, reservation: Reservation) -> list[int]:
        """Numbers of the purchase's valid tickets (prefetched); refunded ones no longer count."""
        return sorted(
            t.ticket_number for t in reservation.tickets.all() if t.status == t.Status.ACTIVE
        )
