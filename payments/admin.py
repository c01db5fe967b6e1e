"""Staff console for payments and refunds; every action calls a service."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core import exceptions as domain
from core.admin import ReadOnlyAdmin
from payments.models import Payment, Refund, SandboxLedgerEntry
from reservations.services.refunds import refund_purchase, retry_refund


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("id", "reservation", "amount", "currency", "status", "refunded_total")
    list_filter = ("status", "gateway")
    search_fields = ("reservation__id", "gateway_reference", "idempotency_key")
    readonly_fields = [f.name for f in Payment._meta.fields if f.name != "payment_token"]
    exclude = ("payment_token",)
    actions = ("refund_purchases",)

    @admin.action(description="Refund the selected purchases in full")
    def refund_purchases(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        opened = 0
        for payment in queryset:
            try:
                refund_purchase(
                    reservation=payment.reservation_id,
                    reason=f"refund by staff ({request.user})",
                    actor=request.user,
                )
            except domain.DomainError as error:
                self.message_user(request, f"Payment {payment.pk}: {error.detail}", messages.ERROR)
                continue
            opened += 1
        self.message_user(request, f"{opened} refund(s) under way.", messages.SUCCESS)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "payment",
        "amount",
        "status",
        "attempts",
        "next_attempt_at",
        "requested_by",
    )
    # "Needs attention" first: those are the refunds a person has to look at.
    list_filter = ("status",)
    search_fields = ("payment__reservation__id", "reason", "last_error")
    readonly_fields = [f.name for f in Refund._meta.fields]
    actions = ("retry_now",)

    @admin.action(description="Retry the selected refunds now")
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


@admin.register(SandboxLedgerEntry)
class SandboxLedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "reference", "amount", "status", "code", "attempts")
    list_filter = ("kind", "status")
