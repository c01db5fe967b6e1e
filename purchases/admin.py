"""Staff actions on purchases: refund a purchase (a reason is required), retry a refund.

They sit on the payments' and reservations' admin pages, which the lower apps
register read-only; this app (above them) re-registers them with its actions.
Tickets are listed here read-only. Every action calls a service and checks its
permission (``docs/console.md``).
"""

import uuid
from collections.abc import Iterable

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core import exceptions as domain
from core.admin import (
    ReadOnlyAdmin,
    ReasonForm,
    action_form_page,
    confirmed_form,
    has_model_permission,
)
from payments.admin import PaymentAdmin, RefundAdmin
from payments.models import Payment, Refund
from purchases.models import Ticket
from purchases.services.refunds import refund_purchase, retry_refund
from reservations.admin import ReservationAdmin
from reservations.models import Reservation

admin.site.unregister(Payment)
admin.site.unregister(Refund)
admin.site.unregister(Reservation)


class RefundReasonForm(ReasonForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=Refund._meta.get_field("reason").max_length,
        help_text="Required: the refund and the audit trail keep it.",
    )


def refund_with_reason(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    purchases: Iterable[tuple[str, uuid.UUID, str]],
) -> TemplateResponse | None:
    """Ask for the reason, then refund each purchase ``(label, reservation id, status)``."""
    purchases = list(purchases)
    form = confirmed_form(request, RefundReasonForm)
    if not form.is_valid():
        lines = [f"{label}: {status}" for label, _, status in purchases]
        return action_form_page(
            modeladmin,
            request,
            queryset,
            action=action,
            title="Refund purchases",
            lines=[
                "Each completed purchase below is refunded in full (others are refused):",
                *lines,
            ],
            form=form,
            submit_label="Refund",
        )
    opened = 0
    for label, reservation_id, _ in purchases:
        try:
            refund_purchase(
                reservation=reservation_id,
                reason=form.cleaned_data["reason"],
                actor=request.user,
            )
        except domain.DomainError as error:
            modeladmin.message_user(request, f"{label}: {error.detail}", messages.ERROR)
            continue
        opened += 1
    modeladmin.message_user(request, f"{opened} refund(s) under way.", messages.SUCCESS)
    return None


def _can_refund(request: HttpRequest) -> bool:
    return has_model_permission(request, Payment, "refund_purchase")


@admin.register(Payment)
class PurchasePaymentAdmin(PaymentAdmin):
    actions = ("refund_purchases",)

    def has_refund_purchase_permission(self, request: HttpRequest) -> bool:
        return _can_refund(request)

    @admin.action(
        description="Refund the selected purchases in full (asks for a reason)",
        permissions=["refund_purchase"],
    )
    def refund_purchases(
        self, request: HttpRequest, queryset: QuerySet[Payment]
    ) -> TemplateResponse | None:
        purchases = [
            (f"Payment {p.pk} ({p.amount} {p.currency})", p.reservation_id, p.reservation.status)
            for p in queryset.select_related("reservation")
        ]
        return refund_with_reason(
            self, request, queryset, action="refund_purchases", purchases=purchases
        )


@admin.register(Reservation)
class PurchaseReservationAdmin(ReservationAdmin):
    actions = [*ReservationAdmin.actions, "refund_purchases"]

    def has_refund_purchase_permission(self, request: HttpRequest) -> bool:
        return _can_refund(request)

    @admin.action(
        description="Refund the selected purchases in full (completed only, asks for a reason)",
        permissions=["refund_purchase"],
    )
    def refund_purchases(
        self, request: HttpRequest, queryset: QuerySet[Reservation]
    ) -> TemplateResponse | None:
        purchases = [
            (f"Reservation {r.pk} ({r.total_price} {r.currency})", r.pk, r.status) for r in queryset
        ]
        return refund_with_reason(
            self, request, queryset, action="refund_purchases", purchases=purchases
        )


@admin.register(Refund)
class PurchaseRefundAdmin(RefundAdmin):
    actions = ("retry_now",)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, Refund, "retry_refund")

    @admin.action(description="Retry the selected refunds now", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        retried = 0
        for refund in queryset:
            try:
                retry_refund(refund_id=refund.pk, actor=request.user)
            except domain.DomainError as error:
                self.message_user(request, f"Refund {refund.pk}: {error.detail}", messages.ERROR)
                continue
            retried += 1
        self.message_user(request, f"{retried} refund(s) retried.", messages.SUCCESS)


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = (
        "ticket_number",
        "house",
        "owner",
        "status",
        "reservation",
        "issued_at",
        "refunded_at",
    )
    list_filter = ("status", ("house", admin.RelatedOnlyFieldListFilter), "issued_at")
    search_fields = ("=ticket_number", "owner__username", "house__title", "reservation__id")
    list_select_related = ("house", "owner")
    raw_id_fields = ("house", "owner", "reservation", "payment")
    date_hierarchy = "issued_at"
