"""Staff console for draws: the record read-only, conduct (confirmation page), disqualify.

Every write calls a service (``conduct_draw``, ``disqualify_winner``,
``cancel_lottery_by_staff``), exactly as the API does.
"""

from typing import NamedTuple

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core import exceptions as domain
from core.admin import AuditHistoryMixin
from draws.models import Draw
from draws.services.cancelling import cancel_lottery_by_staff
from draws.services.redraw import disqualify_winner
from draws.services.running import conduct_draw

RECORD_FIELDS = (
    "algorithm_version",
    "commitment",
    "seed",
    "tickets_root",
    "tickets_count",
    "alternates_count",
    "beacon_chain",
    "beacon_round",
    "beacon_randomness",
    "beacon_signature",
    "entropy_source",
    "entropy_note",
    "winning_index",
    "winning_ticket_number",
    "alternates",
    "awarded_ticket_number",
    "disqualified",
    "supersedes",
)


class ConductForm(forms.Form):
    beacon_signature = forms.CharField(
        required=False,
        max_length=192,
        help_text="The fixed round's signature from any drand relay (96 hex characters).",
    )
    entropy = forms.CharField(
        required=False, max_length=64, help_text="Or manual entropy: 64 hex characters."
    )
    source = forms.CharField(
        required=False, max_length=1000, help_text="Where the manual entropy came from."
    )


class DisqualifyForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, max_length=2000)


class CancelLotteryForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, max_length=2000)


class StaffAction(NamedTuple):
    statuses: tuple[str, ...]
    page: str
    label: str
    permission: str


STAFF_ACTIONS = (
    StaffAction(Draw.AWAITING_RESULT, "conduct", "Conduct this draw", "draws.conduct_draw"),
    StaffAction(
        (Draw.Status.COMPLETED,), "disqualify", "Disqualify the winner", "draws.disqualify_winner"
    ),
    StaffAction(
        (Draw.Status.SCHEDULED,), "cancel_lottery", "Cancel the lottery", "lottery.cancel_house"
    ),
)


def staff_action_for(draw: Draw) -> StaffAction | None:
    return next((action for action in STAFF_ACTIONS if draw.status in action.statuses), None)


@admin.register(Draw)
class DrawAdmin(AuditHistoryMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "house",
        "status",
        "beacon_round",
        "entropy_source",
        "awarded_ticket_number",
        "attempts",
        "needs_attention_at",
        "closed_at",
        "completed_at",
    )
    list_filter = ("status", "entropy_source")
    search_fields = ("house__title",)
    list_select_related = ("house",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "house",
                    "status",
                    "public_json",
                    "staff_actions",
                    "audit_history",
                    "attempts",
                    "last_error",
                    "needs_attention_at",
                    "conducted_by",
                    "closed_at",
                    "completed_at",
                )
            },
        ),
        ("Verification record (DRAWS.md section 5)", {"fields": RECORD_FIELDS}),
    )
    readonly_fields = (
        "house",
        "status",
        "public_json",
        "staff_actions",
        "audit_history",
        "attempts",
        "last_error",
        "needs_attention_at",
        "conducted_by",
        "closed_at",
        "completed_at",
        *RECORD_FIELDS,
    )
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Draw | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Draw | None = None) -> bool:
        return False  # read-only; the staff pages below call services

    @admin.display(description="Public JSON")
    def public_json(self, draw: Draw) -> str:
        document = reverse("draws-detail", args=[draw.pk])
        if not draw.is_frozen:
            return format_html('<a href="{}">{}</a>', document, document)
        tickets = reverse("draws-tickets", args=[draw.pk])
        return format_html(
            '<a href="{}">{}</a> &middot; <a href="{}">{}</a>', document, document, tickets, tickets
        )

    @admin.display(description="Staff actions")
    def staff_actions(self, draw: Draw) -> str:
        action = staff_action_for(draw)
        if action is None:
            return "-"
        url = reverse(f"admin:draws_draw_{action.page}", args=[draw.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, action.label)

    def get_fieldsets(self, request: HttpRequest, obj: Draw | None = None) -> list:
        # The button is shown only to those its page would let in.
        action = staff_action_for(obj) if obj is not None else None
        if action is None or request.user.has_perm(action.permission):
            return super().get_fieldsets(request, obj)
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "staff_actions"]})
            for name, options in super().get_fieldsets(request, obj)
        ]

    def get_urls(self) -> list:
        views = (
            ("conduct", self.conduct_view),
            ("disqualify", self.disqualify_view),
            ("cancel-lottery", self.cancel_lottery_view),
        )
        return [
            path(
                f"<int:draw_id>/{name}/",
                self.admin_site.admin_view(view),
                name=f"draws_draw_{name.replace('-', '_')}",
            )
            for name, view in views
        ] + super().get_urls()

    def _staff_page(
        self,
        request: HttpRequest,
        draw_id: int,
        form_class: type[forms.Form],
        title: str,
        act: object,
        permission: str,
        done_url: str | None = None,
    ) -> HttpResponse:
        # The page and its POST both need the action's permission (docs/console.md).
        if not request.user.has_perm(permission):
            raise PermissionDenied
        draw = get_object_or_404(Draw.objects.select_related("house"), pk=draw_id)
        change_url = reverse("admin:draws_draw_change", args=[draw.pk])
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = act(draw, form.cleaned_data)
            except domain.DomainError as error:
                details = "; ".join(e["message"] for e in getattr(error, "errors", []))
                self.message_user(request, f"{error.detail} {details}".strip(), messages.ERROR)
            else:
                self.message_user(request, outcome, messages.SUCCESS)
                return HttpResponseRedirect(done_url or change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "draw": draw,
            "form": form,
            "opts": self.model._meta,
            "change_url": change_url,
            "record": [(name, getattr(draw, name)) for name in RECORD_FIELDS],
        }
        return TemplateResponse(request, "admin/draws/draw/staff_action.html", context)

    def conduct_view(self, request: HttpRequest, draw_id: int) -> HttpResponse:
        def act(draw: Draw, data: dict) -> str:
            signature = data["beacon_signature"].strip()
            if signature:
                done = conduct_draw(
                    draw_id=draw.pk,
                    actor=request.user,
                    beacon_round=draw.beacon_round,
                    beacon_signature=signature,
                )
            else:
                done = conduct_draw(
                    draw_id=draw.pk,
                    actor=request.user,
                    entropy=data["entropy"].strip() or None,
                    source=data["source"].strip() or None,
                )
            return f"Draw {done.pk} completed: ticket {done.awarded_ticket_number} wins."

        return self._staff_page(
            request, draw_id, ConductForm, "Conduct the draw", act, "draws.conduct_draw"
        )

    def disqualify_view(self, request: HttpRequest, draw_id: int) -> HttpResponse:
        def act(draw: Draw, data: dict) -> str:
            redraw = disqualify_winner(draw_id=draw.pk, actor=request.user, reason=data["reason"])
            return f"Draw {redraw.pk} now awards ticket {redraw.awarded_ticket_number}."

        return self._staff_page(
            request,
            draw_id,
            DisqualifyForm,
            "Disqualify the winner",
            act,
            "draws.disqualify_winner",
        )

    def cancel_lottery_view(self, request: HttpRequest, draw_id: int) -> HttpResponse:
        def act(draw: Draw, data: dict) -> str:
            cancel_lottery_by_staff(
                house_id=draw.house_id, actor=request.user, reason=data["reason"]
            )
            return f"The lottery of house {draw.house_id} is cancelled; refunds are under way."

        # A cancelled house has no draw: this one is gone afterwards, back to the list.
        done_url = reverse("admin:draws_draw_changelist")
        return self._staff_page(
            request,
            draw_id,
            CancelLotteryForm,
            "Cancel the lottery",
            act,
            "lottery.cancel_house",
            done_url,
        )
