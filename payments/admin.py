"""Staff console for payments and refunds (read-only here).

The actions that refund a purchase or retry a refund belong to the purchase,
so ``purchases.admin`` adds them to these pages."""

from django.contrib import admin

from core.admin import AuditHistoryMixin, ReadOnlyAdmin
from payments.models import Payment, Refund, SandboxLedgerEntry


@admin.register(Payment)
class PaymentAdmin(AuditHistoryMixin, ReadOnlyAdmin):
    list_display = ("id", "reservation", "amount", "currency", "status", "refunded_total")
    list_filter = ("status", "gateway")
    search_fields = ("reservation__id", "gateway_reference", "idempotency_key")
    readonly_fields = [
        *(f.name for f in Payment._meta.fields if f.name != "payment_token"),
        "audit_history",
    ]
    exclude = ("payment_token",)


@admin.register(Refund)
class RefundAdmin(AuditHistoryMixin, ReadOnlyAdmin):
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
    readonly_fields = [*(f.name for f in Refund._meta.fields), "audit_history"]


@admin.register(SandboxLedgerEntry)
class SandboxLedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "reference", "amount", "status", "code", "attempts")
    list_filter = ("kind", "status")
