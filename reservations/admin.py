"""Reservations in the staff console: read-only; state changes happen through services."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from reservations.models import Reservation


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    """Counters move with every transition: only the services may change a reservation."""

    list_display = (
        "id",
        "house",
        "user",
        "quantity",
        "total_price",
        "currency",
        "status",
        "expires_at",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("id", "user__username", "house__title")
    list_select_related = ("house", "user")
    raw_id_fields = ("house", "user", "promotion")
    date_hierarchy = "created_at"
