"""Staff disqualify a draw's winner: the draw becomes history, an alternate is promoted.

The algorithm's result never changes (the new draw carries the same verification
record, so the verifier still passes); what changes is ``awarded_ticket_number``:
the first of the winner and its ranked alternates not disqualified.
"""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from core import exceptions as domain
from core import metrics, outbox
from core.audit import log_action
from core.locks import lock_rows
from draws.models import Draw
from draws.services.running import completed_payload
from lottery.models import House

logger = logging.getLogger(__name__)

# The frozen inputs and the computed result, copied as they are to the new draw.
RECORD_FIELDS = (
    "house",
    "ticket_list",
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
    "conducted_by",
    "closed_at",
    "attempts",
)


def disqualify_winner(*, draw_id: int, actor: AbstractBaseUser, reason: str) -> Draw:
    """Supersede the completed draw and record a new one awarding the next alternate."""
    reason = reason.strip()
    if not reason:
        raise domain.ValidationFailed(
            [{"field": "reason", "code": "required", "message": "Say why the winner is out."}]
        )
    house_id = Draw.objects.filter(pk=draw_id).values_list("house_id", flat=True).first()
    if house_id is None:
        raise domain.NotFound()
    with transaction.atomic():
        _, [draw] = lock_rows(
            House.objects.filter(pk=house_id).values_list("pk", flat=True),
            Draw.objects.filter(pk=draw_id),
        )
        if draw.status != Draw.Status.COMPLETED:
            raise domain.InvalidState(
                "Only the completed draw of a house has a winner to disqualify."
            )
        now = timezone.now()
        disqualified = [
            *draw.disqualified,
            {
                "ticket_number": draw.awarded_ticket_number,
                "reason": reason,
                "at": now.isoformat(),
                "by": actor.pk,
            },
        ]
        out = {entry["ticket_number"] for entry in disqualified}
        ranked = [draw.winning_ticket_number, *draw.alternates]
        promoted = next((number for number in ranked if number not in out), None)
        if promoted is None:
            raise domain.InvalidState("No alternate is left to promote; cancel the lottery.")
        Draw.objects.filter(pk=draw.pk, status=Draw.Status.COMPLETED).update(
            status=Draw.Status.SUPERSEDED, updated_at=now
        )
        record = model_to_dict(draw, fields=RECORD_FIELDS)
        record["house_id"] = record.pop("house")
        record["ticket_list_id"] = record.pop("ticket_list")
        record["conducted_by_id"] = record.pop("conducted_by")
        redraw = Draw.objects.create(
            **record,
            status=Draw.Status.COMPLETED,
            awarded_ticket_number=promoted,
            disqualified=disqualified,
            supersedes=draw,
            completed_at=now,
        )
        outbox.emit(
            "draw.winner_disqualified",
            {
                "draw_id": draw.pk,
                "house_id": house_id,
                "ticket_number": draw.awarded_ticket_number,
                "new_draw_id": redraw.pk,
                "by": actor.pk,
            },
        )
        outbox.emit("draw.completed", completed_payload(redraw.pk))
        log_action(
            actor=actor,
            action="draw_winner_disqualified",
            obj_type=Draw,
            obj_id=draw.pk,
            before={"status": draw.status, "awarded_ticket_number": draw.awarded_ticket_number},
            after={
                "status": Draw.Status.SUPERSEDED,
                "awarded_ticket_number": promoted,
                "new_draw_id": redraw.pk,
            },
            reason=reason,
        )
    metrics.increment("draws_redrawn_total")
    logger.info("draw %s: winner disqualified, draw %s awards %s", draw.pk, redraw.pk, promoted)
    return redraw
