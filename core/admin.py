"""Staff views of the outbox and dead letters; actions call core services.

Also the console's shared pieces: ``ReasonForm`` and ``action_form_page`` (the
intermediate page of an admin action that asks for a confirmation or a reason).
"""

import json
from collections.abc import Iterable
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from core.audit import object_type_of
from core.dead_letters import discard_dead_letters, requeue_dead_letters
from core.models import AuditEntry, DeadLetter, OutboxEvent


def has_model_permission(request: HttpRequest, model: type[models.Model], codename: str) -> bool:
    """``codename`` of ``model``'s app, e.g. ``refund_purchase`` -> ``payments.refund_purchase``."""
    return request.user.has_perm(f"{model._meta.app_label}.{codename}")


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Required: it is kept in the audit trail.",
    )


def confirmed_form(request: HttpRequest, form_class: type[forms.Form]) -> forms.Form:
    """The action's form: bound on the confirmation page's POST (``post=yes``), else empty."""
    return form_class(request.POST if request.POST.get("post") == "yes" else None)


def action_form_page(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    lines: Iterable[str],
    form: forms.Form,
    submit_label: str,
) -> TemplateResponse:
    """An admin action's intermediate page: what will happen, a form, a CSRF-protected POST.

    It posts back to the changelist with the same action and selection, so Django
    checks the action's permissions again before the action runs.
    """
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": opts,
        "lines": list(lines),
        "form": form,
        "action": action,
        "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "submit_label": submit_label,
        "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }
    return TemplateResponse(request, "admin/console/action_form.html", context)


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

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # The "audit history" links of every object page filter on these two.
        return lookup in ("object_type", "object_id") or super().lookup_allowed(
            lookup, value, request
        )


@admin.register(DeadLetter)
class DeadLetterAdmin(AuditHistoryMixin, ReadOnlyAdmin):
    """Finance: list, inspect (payload and error, read-only), replay or discard."""

    list_display = (
        "id",
        "task_name",
        "status",
        "exception_type",
        "error_summary",
        "retries",
        "requeue_count",
        "created_at",
        "resolution",
    )
    list_filter = ("status", "task_name", "exception_type")
    search_fields = ("task_name", "task_id", "request_id", "last_error")
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("task_name", "task_id", "status", "request_id", "audit_history")}),
        ("Payload", {"fields": ("payload",)}),
        ("Error", {"fields": ("exception_type", "error", "retries")}),
        (
            "Replay",
            {
                "fields": (
                    "requeued_at",
                    "requeued_by",
                    "requeue_count",
                    "requeue_error",
                    "resolved_at",
                    "resolution",
                )
            },
        ),
    )
    readonly_fields = [
        *(f.name for f in DeadLetter._meta.fields),
        "payload",
        "error",
        "audit_history",
    ]
    actions = ("requeue", "discard")

    @admin.display(description="Last error")
    def error_summary(self, letter: DeadLetter) -> str:
        first_line = (letter.last_error or "").strip().splitlines()[:1]
        return first_line[0][:120] if first_line else "-"

    @admin.display(description="Payload (args, kwargs)")
    def payload(self, letter: DeadLetter) -> str:
        document = json.dumps(
            {"args": letter.args, "kwargs": letter.kwargs}, indent=2, sort_keys=True, default=str
        )
        return format_html("<pre>{}</pre>", document)

    @admin.display(description="Last error")
    def error(self, letter: DeadLetter) -> str:
        return format_html("<pre>{}</pre>", letter.last_error)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, DeadLetter, "replay_deadletter")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, DeadLetter, "discard_deadletter")

    @admin.action(description="Replay (requeue) the selected dead letters", permissions=["replay"])
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

    @admin.action(description="Discard the selected dead letters", permissions=["discard"])
    def discard(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        count = discard_dead_letters(ids=queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(request, f"Discarded {count} dead letter(s).", messages.SUCCESS)


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "created_at", "delivered_at", "attempts")
    list_filter = ("event_type",)
    search_fields = ("event_type", "request_id")
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
