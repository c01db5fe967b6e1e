from typing import Any

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


# Documents a reservation (its docstring would enter the schema); renders it through
# ``reservation_representation``, as the lean read does. Takes reservations from
# ``selectors.reservations_with_tickets`` (``promo_code`` and ``ticket_numbers``
# annotated). tests/reservations/test_reservation_read.py checks that rendering
# through the fields below gives exactly what ``reservation_representation`` gives.
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
        return reservation.promo_code

    def get_tickets(self, reservation: Reservation) -> list[int]:
        """Numbers of the purchase's valid tickets (prefetched); refunded ones no longer count."""
        # The docstring is the schema's description; the numbers are annotated now.
        return reservation.ticket_numbers

    def to_representation(self, instance: Reservation) -> dict[str, Any]:
        # Building this serializer's fields costs more than the answer; the lean read
        # (``api.detail``) renders without it, and both must say the same.
        return reservation_representation(instance)


# DRF's own formatting of the model's field types, built once instead of per serializer.
_PRICE = serializers.DecimalField(max_digits=12, decimal_places=2)
_AMOUNT = serializers.DecimalField(max_digits=14, decimal_places=2)
_DATETIME = serializers.DateTimeField()


def reservation_representation(reservation: Reservation) -> dict[str, Any]:
    """A reservation's JSON body, for every view that shows one (DRF or the lean read)."""
    return {
        "id": str(reservation.id),
        "house_id": reservation.house_id,
        "quantity": reservation.quantity,
        "unit_price": _PRICE.to_representation(reservation.unit_price),
        "discount": _AMOUNT.to_representation(reservation.discount),
        "total_price": _AMOUNT.to_representation(reservation.total_price),
        "currency": reservation.currency,
        "promo_code": reservation.promo_code,
        "status": reservation.status,
        "expires_at": _DATETIME.to_representation(reservation.expires_at),
        "processed_at": _DATETIME.to_representation(reservation.processed_at),  # None stays None
        "failure_code": reservation.failure_code,
        "tickets": reservation.ticket_numbers,
        "created_at": _DATETIME.to_representation(reservation.created_at),
    }
