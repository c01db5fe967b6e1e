"""Staff views of the outbox and dead letters; actions call core services."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.dead_letters import discard_dead_letters, requeue_dead_letters
from core.models import DeadLetter, OutboxEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only services may write: staff read them and use the actions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "task_name",
        "status",
        "exception_type",
        "retries",
        "created_at",
        "resolution",
    )
    list_filter = ("status", "task_name")
    search_fields = ("task_name", "task_id", "request_id", "last_error")
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ("requeue", "discard")

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_active and request.user.is_staff

    @admin.action(description="Requeue the selected dead letters")
    def requeue(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = requeue_dead_letters(ids=ids, actor=request.user)
        self.message_user(request, f"Requeued {count} task(s).", messages.SUCCESS)
        if count < len(ids):
            self.message_user(
                request,
                f"{len(ids) - count} not requeued (already requeued, or could not be sent: "
                "see their requeue error).",
                messages.WARNING,
            )

    @admin.action(description="Discard the selected dead letters")
    def discard(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        count = discard_dead_letters(ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"Discarded {count} dead letter(s).", messages.SUCCESS)


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "created_at", "delivered_at", "attempts")
    list_filter = ("event_type",)
    search_fields = ("event_type", "request_id")
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
