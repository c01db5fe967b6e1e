"""Staff console for houses and promotions. Every write goes through a service."""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core import exceptions as domain
from core.admin import AuditHistoryMixin, has_model_permission
from lottery import services
from lottery.models import House, PlayerProfile, Promotion

HOUSE_COUNTERS = (
    "tickets_sold",
    "tickets_reserved",
    "participants_count",
    "next_ticket_number",
    "deleted_at",
    "created_at",
    "updated_at",
)


def _house_status_action(to_status: str, label: str) -> Callable[..., None]:
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        for house in queryset:
            try:
                services.change_house_status(
                    house_id=house.pk, to_status=to_status, actor=request.user
                )
            except domain.DomainError as error:
                modeladmin.message_user(request, f"{house}: {error.detail}", messages.ERROR)
            else:
                modeladmin.message_user(request, f"{house}: now {to_status}")

    action.__name__ = f"make_{to_status}"
    return admin.action(description=label, permissions=["change"])(action)


class CommitmentSetFilter(admin.SimpleListFilter):
    title = "draw commitment"
    parameter_name = "commitment"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("set", "Set"), ("missing", "Missing")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "set":
            return queryset.exclude(draw_commitment="")
        if self.value() == "missing":
            return queryset.filter(draw_commitment="")
        return queryset


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("no", "Not deleted"), ("yes", "Soft-deleted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("no", "yes"):
            return queryset.filter(deleted_at__isnull=self.value() == "no")
        return queryset


class HouseAdminForm(forms.ModelForm):
    class Meta:
        model = House
        fields = (
            "title",
            "description",
            "address",
            "city",
            "property_value",
            "ticket_price",
            "currency",
            "total_tickets",
            "participant_cap",
            "min_tickets_per_purchase",
            "max_tickets_per_purchase",
            "max_tickets_per_user",
            "min_participation_percent",
            "sales_start_at",
            "sales_end_at",
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        errors = services.house_edit_errors(
            house_id=self.instance.pk,
            total_tickets=cleaned.get("total_tickets"),
            participant_cap=cleaned.get("participant_cap"),
        )
        for error in errors:
            self.add_error(error["field"], error["message"])
        return cleaned


@admin.register(House)
class HouseAdmin(AuditHistoryMixin, admin.ModelAdmin):
    """Lottery operators: edit, activate, pause/resume, close early, soft delete.

    The cancel action (it refunds through purchases) is added by ``console.admin``.
    """

    form = HouseAdminForm
    list_display = (
        "id",
        "title",
        "city",
        "status",
        "sold_of_total",
        "tickets_reserved",
        "participants_count",
        "sales_end_at",
        "commitment_set",
        "deleted_at",
    )
    list_filter = ("status", CommitmentSetFilter, DeletedFilter, "city", "sales_end_at")
    search_fields = ("=id", "title", "city", "address")
    readonly_fields = (*HOUSE_COUNTERS, "status", "draw_commitment", "audit_history")
    actions = [
        _house_status_action("active", "Activate or resume sales (activation sets the commitment)"),
        _house_status_action("paused", "Pause sales"),
        _house_status_action("closed", "Close sales early"),
        "soft_delete",
    ]

    @admin.display(description="Sold / total", ordering="tickets_sold")
    def sold_of_total(self, house: House) -> str:
        return f"{house.tickets_sold} / {house.total_tickets}"

    @admin.display(description="Commitment", boolean=True)
    def commitment_set(self, house: House) -> bool:
        return bool(house.draw_commitment)

    def save_model(self, request: HttpRequest, obj: House, form: object, change: bool) -> None:
        services.save_house(house=obj, actor=request.user)

    def has_delete_permission(self, request: HttpRequest, obj: House | None = None) -> bool:
        return False  # soft delete only, through the service

    def has_soft_delete_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, House, "soft_delete_house")

    @admin.action(
        description="Soft-delete (only a house that never had tickets)",
        permissions=["soft_delete"],
    )
    def soft_delete(self, request: HttpRequest, queryset: QuerySet) -> None:
        for house in queryset:
            try:
                services.soft_delete_house(house_id=house.pk, actor=request.user)
            except domain.DomainError as error:
                self.message_user(request, f"{house}: {error.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{house}: deleted")


@admin.register(Promotion)
class PromotionAdmin(AuditHistoryMixin, admin.ModelAdmin):
    list_display = (
        "code",
        "discount_percent",
        "discount_amount",
        "times_redeemed",
        "max_redemptions",
        "per_user_limit",
        "valid_until",
        "is_active",
    )
    search_fields = ("code",)
    readonly_fields = ("times_redeemed", "created_at", "updated_at", "audit_history")

    def save_model(self, request: HttpRequest, obj: Promotion, form: object, change: bool) -> None:
        services.save_promotion(promotion=obj, actor=request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Promotion | None = None) -> bool:
        return False  # deactivate instead: redemptions keep referring to it


@admin.register(PlayerProfile)
class PlayerProfileAdmin(AuditHistoryMixin, admin.ModelAdmin):
    """Staff verify, suspend or ban players; the service drops their cached credentials."""

    list_display = ("user", "is_verified", "account_status", "created_at")
    list_filter = ("is_verified", "account_status")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    fields = (
        "user",
        "is_verified",
        "account_status",
        "created_at",
        "updated_at",
        "audit_history",
    )
    readonly_fields = ("user", "created_at", "updated_at", "audit_history")
    actions = ["verify", "suspend"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # every user gets a profile when created

    def has_delete_permission(self, request: HttpRequest, obj: PlayerProfile | None = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: PlayerProfile, form: object, change: bool
    ) -> None:
        services.set_account_status(
            profile=obj,
            account_status=obj.account_status,
            is_verified=obj.is_verified,
            actor=request.user,
        )

    @admin.action(description="Verify the selected players", permissions=["change"])
    def verify(self, request: HttpRequest, queryset: QuerySet) -> None:
        for profile in queryset:
            services.set_account_status(
                profile=profile,
                account_status=profile.account_status,
                is_verified=True,
                actor=request.user,
            )

    @admin.action(description="Suspend the selected players", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet) -> None:
        for profile in queryset:
            services.set_account_status(
                profile=profile,
                account_status=PlayerProfile.AccountStatus.SUSPENDED,
                is_verified=profile.is_verified,
                actor=request.user,
            )
