"""Reservations in the staff console: read-only; state changes happen through services.

``purchases.admin`` re-registers this page with the refund action (a purchase
refund belongs to purchases, above this app).
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core import exceptions as domain
from core.admin import AuditHistoryMixin, ReadOnlyAdmin, has_model_permission
from reservations.models import Reservation
from reservations.services.lifecycle import expire_reservation


@admin.register(Reservation)
class ReservationAdmin(AuditHistoryMixin, ReadOnlyAdmin):
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
    list_filter = ("status", ("house", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("id", "user__username", "house__title")
    list_select_related = ("house", "user")
    raw_id_fields = ("house", "user", "promotion")
    date_hierarchy = "created_at"
    readonly_fields = ("audit_history",)
    actions = ["expire_now"]

    def has_expire_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, Reservation, "expire_reservation")

    @admin.action(description="Expire now (pending only)", permissions=["expire"])
    def expire_now(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
        expired = 0
        for reservation in queryset:
            try:
                expire_reservation(reservation_id=reservation.pk, actor=request.user)
            except domain.DomainError as error:
                self.message_user(
                    request, f"Reservation {reservation.pk}: {error.detail}", messages.ERROR
                )
                continue
            expired += 1
        self.message_user(request, f"{expired} reservation(s) expired.", messages.SUCCESS)
