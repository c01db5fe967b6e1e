"""Staff console for payments and refunds (read-only here).

The actions that refund a purchase or retry a refund belong to the purchase,
so ``purchases.admin`` adds them to these pages."""

from django.contrib import admin
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest
from django.utils.html import format_html

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


# The status column's colour: what needs a person stands out.
STATUS_COLOURS = {
    Refund.Status.NEEDS_ATTENTION: "#ba2121",
    Refund.Status.FAILED: "#b26b00",
    Refund.Status.PENDING: "#417690",
    Refund.Status.SUCCEEDED: "#2e7d32",
}


@admin.register(Refund)
class RefundAdmin(AuditHistoryMixin, ReadOnlyAdmin):
    list_display = (
        "id",
        "payment",
        "amount",
        "status_badge",
        "attempts",
        "next_attempt_at",
        "error_summary",
        "reason",
        "requested_by",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("payment__reservation__id", "reason", "last_error")
    list_select_related = ("payment", "requested_by")
    readonly_fields = [*(f.name for f in Refund._meta.fields), "audit_history"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Refund]:
        # "Needs attention" first: those are the refunds a person has to look at.
        attention_first = Case(
            When(status=Refund.Status.NEEDS_ATTENTION, then=Value(0)),
            When(status=Refund.Status.FAILED, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
        # Annotated before ordering: ModelAdmin.get_queryset would order by it too early.
        queryset = self.model._default_manager.annotate(attention_rank=attention_first)
        return queryset.order_by(*self.get_ordering(request))

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        return ("attention_rank", "-created_at", "-id")

    @admin.display(description="Status", ordering="attention_rank")
    def status_badge(self, refund: Refund) -> str:
        colour = STATUS_COLOURS.get(refund.status, "#666")
        weight = "bold" if refund.status == Refund.Status.NEEDS_ATTENTION else "normal"
        return format_html(
            '<span class="refund-status refund-status-{}" style="color: {}; font-weight: {}">'
            "{}</span>",
            refund.status,
            colour,
            weight,
            refund.get_status_display(),
        )

    @admin.display(description="Last error")
    def error_summary(self, refund: Refund) -> str:
        first_line = (refund.last_error or "").strip().splitlines()[:1]
        return first_line[0][:120] if first_line else "-"


@admin.register(SandboxLedgerEntry)
class SandboxLedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "reference", "amount", "status", "code", "attempts")
    list_filter = ("kind", "status")
