"""Reservations in the staff console: read-only; state changes happen through services."""

from django.contrib import admin
from django.http import HttpRequest

from reservations.models import Reservation


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Reservation | None = None) -> bool:
        return False  # counters move with every transition: only the services may change one

    def has_delete_permission(self, request: HttpRequest, obj: Reservation | None = None) -> bool:
        return False
