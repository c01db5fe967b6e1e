"""Staff actions on purchases: refund a purchase, retry a refund. Every action calls a service.

They sit on the payments' admin pages, which ``payments.admin`` registers
read-only; this app (above payments) re-registers them with its actions.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core import exceptions as domain
from payments.admin import PaymentAdmin, RefundAdmin
from payments.models import Payment, Refund
from purchases.services.refunds import refund_purchase, retry_refund

admin.site.unregister(Payment)
admin.site.unregister(Refund)


@admin.register(Payment)
class PurchasePaymentAdmin(PaymentAdmin):
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
class PurchaseRefundAdmin(RefundAdmin):
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
