"""Read-only lists: players change their watchlist through the API, the relay writes deliveries."""

from django.contrib import admin
from django.http import HttpRequest

from watchlist.models import HouseAlert, NotificationDelivery, WatchlistItem


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WatchlistItem)
class WatchlistItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "house", "created_at")
    list_select_related = ("user", "house")
    search_fields = ("user__username", "house__title")
    date_hierarchy = "created_at"


@admin.register(HouseAlert)
class HouseAlertAdmin(ReadOnlyAdmin):
    list_display = ("id", "house", "kind", "raised_at")
    list_select_related = ("house",)
    list_filter = ("kind",)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "email", "status", "attempts", "event_id", "sent_at")
    list_filter = ("status", "kind")
    search_fields = ("email", "recipient__username")
    readonly_fields = ("last_error",)
