"""Staff views of the outbox and dead letters; actions call core services."""

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from core.audit import object_type_of
from core.dead_letters import discard_dead_letters, requeue_dead_letters
from core.models import AuditEntry, DeadLetter, OutboxEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only services may write: staff read them and use the actions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def audit_history_url(obj: models.Model) -> str:
    """The audit trail's list filtered to one object."""
    query = urlencode({"object_type": object_type_of(obj), "object_id": str(obj.pk)})
    return f"{reverse('admin:core_auditentry_changelist')}?{query}"


class AuditHistoryMixin:
    """Adds ``audit_history``: a link from an object's page to its audit entries.

    List ``"audit_history"`` in the admin's ``readonly_fields`` (and ``fields`` if set).
    """

    @admin.display(description="Audit history")
    def audit_history(self, obj: models.Model | None) -> str:
        if obj is None or obj.pk is None:
            return "-"
        return format_html('<a href="{}">Staff actions on this object</a>', audit_history_url(obj))


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read-only for everyone, superusers included: entries are written by services only."""

    list_display = (
        "created_at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "reason",
        "request_id",
    )
    list_filter = (
        "action",
        "object_type",
        ("actor", admin.RelatedOnlyFieldListFilter),
        "created_at",
    )
    search_fields = ("object_id", "action", "actor__username", "reason", "request_id")
    list_select_related = ("actor",)
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    actions = None

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_active and request.user.is_staff

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # The "audit history" links of every object page filter on these two.
        return lookup in ("object_type", "object_id") or super().lookup_allowed(
            lookup, value, request
        )


@admin.register(DeadLetter)
class DeadLetterAdmin(AuditHistoryMixin, ReadOnlyAdmin):
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
    readonly_fields = [*(f.name for f in DeadLetter._meta.fields), "audit_history"]
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
        count = discard_dead_letters(ids=queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(request, f"Discarded {count} dead letter(s).", messages.SUCCESS)


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "created_at", "delivered_at", "attempts")
    list_filter = ("event_type",)
    search_fields = ("event_type", "request_id")
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
