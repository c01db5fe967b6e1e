"""Admin pages that span several apps: the house console with its cancel action.

Cancelling a lottery refunds every purchase through ``purchases``, which
``lottery`` may not import; so this app (above draws) re-registers the house
admin with the cancel action, as ``purchases.admin`` does for payments.
"""

from django.contrib import admin, messages
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core import exceptions as domain
from core.admin import ReasonForm, action_form_page, confirmed_form, has_model_permission
from draws.services.cancelling import cancel_lottery_by_staff, purchases_to_refund
from lottery.admin import HouseAdmin
from lottery.models import House

admin.site.unregister(House)


@admin.register(House)
class ConsoleHouseAdmin(HouseAdmin):
    actions = [*HouseAdmin.actions, "cancel_lottery"]

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, House, "cancel_house")

    @admin.action(
        description="Cancel the lottery and refund every purchase", permissions=["cancel"]
    )
    def cancel_lottery(
        self, request: HttpRequest, queryset: QuerySet[House]
    ) -> TemplateResponse | None:
        form = confirmed_form(request, ReasonForm)
        if form.is_valid():
            for house in queryset:
                try:
                    cancel_lottery_by_staff(
                        house_id=house.pk, actor=request.user, reason=form.cleaned_data["reason"]
                    )
                except domain.DomainError as error:
                    self.message_user(request, f"{house}: {error.detail}", messages.ERROR)
                else:
                    self.message_user(
                        request, f"{house}: cancelled; its refunds are under way.", messages.SUCCESS
                    )
            return None
        return action_form_page(
            self,
            request,
            queryset,
            action="cancel_lottery",
            title="Cancel the lottery",
            lines=self._refund_summary(queryset),
            form=form,
            submit_label="Yes, cancel and refund",
        )

    @staticmethod
    def _refund_summary(queryset: QuerySet[House]) -> list[str]:
        """One line per house: how many purchases its cancellation refunds, and how much."""
        refunds = {
            row["house_id"]: row
            for row in purchases_to_refund()
            .filter(house__in=queryset)
            .order_by()
            .values("house_id")
            .annotate(purchases=Count("pk", distinct=True), amount=Sum("payments__amount"))
        }
        lines = []
        for house in queryset:
            row = refunds.get(house.pk, {"purchases": 0, "amount": 0})
            lines.append(
                f"{house.title} ({house.get_status_display()}): {row['purchases']} purchase(s) "
                f"will be refunded, {row['amount'] or 0} {house.currency} in total."
            )
        return lines
