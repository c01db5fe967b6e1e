"""Completing a frozen draw: entropy in, winner and alternates out, once.

Two doors, one rule: the runner (``run_waiting_draws``, drand mode) fetches the
fixed round itself; staff ``conduct_draw`` with the round's signature pasted
from any relay, or with manual entropy. Both end in ``complete_draw``, which
takes the house and draw row locks (the draw ``skip_locked`` for the runner: a
second worker moves on), computes with ``draws.verify`` from stored inputs only,
and records the result. So a crash or a retry can only give the same winner.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from core import exceptions as domain
from core import failpoints, metrics, outbox, shutdown
from core.audit import log_action
from core.locks import SkipLocked, lock_rows
from draws import beacon, verify
from draws.models import Draw
from draws.selectors import leaves_at
from lottery.models import House
from lottery.services import change_house_status
from purchases.models import Ticket

logger = logging.getLogger(__name__)

HEX_64 = re.compile(r"[0-9a-fA-F]{64}")
SIGNATURE_HEX = re.compile(r"[0-9a-fA-F]{96}")


@dataclass(frozen=True)
class Entropy:
    """The public randomness of one draw and where it came from (DRAWS.md section 3)."""

    source: str  # Draw.EntropySource
    randomness: str  # 64 lowercase hex
    signature: str = ""  # drand only
    note: str = ""  # manual only: staff's free-text source


def round_time(beacon_round: int, chain: verify.Chain = verify.QUICKNET) -> int:
    return chain.genesis_time + (beacon_round - 1) * chain.period


# --- The runner (drand mode) -------------------------------------------------


def run_waiting_draws(*, now: datetime | None = None) -> dict[str, int]:
    """Fetch the fixed round of every frozen draw whose round is due, and complete it."""
    if settings.DRAW_ENTROPY_SOURCE != "drand":
        return {}  # manual: staff conduct every draw, nothing goes to the network
    now = now or timezone.now()
    outcomes: dict[str, int] = {}
    waiting = Draw.objects.filter(
        status__in=Draw.AWAITING_RESULT, needs_attention_at__isnull=True
    ).values_list("pk", "beacon_round")
    for draw_id, beacon_round in shutdown.each("run_waiting_draws", waiting):
        if round_time(beacon_round) > now.timestamp():
            outcome = "round_not_due"
        else:
            outcome = fetch_and_complete(draw_id=draw_id, beacon_round=beacon_round)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def fetch_and_complete(*, draw_id: int, beacon_round: int) -> str:
    """Mark the draw ``running``, fetch its round outside any transaction, complete it."""
    claimed = Draw.objects.filter(pk=draw_id, status__in=Draw.AWAITING_RESULT).update(
        status=Draw.Status.RUNNING, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if not claimed:
        return "gone"
    with metrics.timer("draw_duration_seconds", step="fetch_and_complete"):
        return _fetch_and_complete_claimed(draw_id=draw_id, beacon_round=beacon_round)


def _fetch_and_complete_claimed(*, draw_id: int, beacon_round: int) -> str:
    try:
        signature = beacon.fetch_round(
            beacon_round,
            urls=settings.DRAW_BEACON_URLS,
            timeout=settings.DRAW_BEACON_TIMEOUT_SECONDS,
            attempts=settings.DRAW_BEACON_ATTEMPTS,
        )
        entropy = Entropy(
            source=Draw.EntropySource.DRAND,
            randomness=verify.beacon_randomness(signature),
            signature=signature,
        )
        draw = complete_draw(draw_id=draw_id, entropy=entropy, skip_locked=True)
    except Exception as exc:
        record_failure(draw_id=draw_id, error=exc)
        return "failed"
    return "completed" if draw is not None else "locked"


def record_failure(*, draw_id: int, error: BaseException) -> None:
    """A failed attempt leaves ``failed`` with its error; the next pass retries it."""
    message = f"{type(error).__name__}: {error}"[:2000]
    step = "beacon" if isinstance(error, beacon.BeaconError) else "complete"
    Draw.objects.filter(pk=draw_id, status__in=Draw.AWAITING_RESULT).update(
        status=Draw.Status.FAILED, last_error=message, updated_at=timezone.now()
    )
    logger.warning("draw %s attempt failed: %s", draw_id, message)
    metrics.increment("draws_errors_total", step=step)


# --- Completing (both doors) --------------------------------------------------


def complete_draw(
    *,
    draw_id: int,
    entropy: Entropy,
    actor: AbstractBaseUser | None = None,
    skip_locked: bool = False,
) -> Draw | None:
    """Compute and record the result; None when another worker holds the draw.

    A draw already completed is returned as it is (the caller compares inputs).
    """
    house_id = Draw.objects.values_list("house_id", flat=True).get(pk=draw_id)
    draws: QuerySet[Draw] = Draw.objects.filter(pk=draw_id)
    with transaction.atomic():
        _, locked = lock_rows(
            House.objects.filter(pk=house_id).values_list("pk", flat=True),
            SkipLocked(draws) if skip_locked else draws,
        )
        if not locked:
            return None
        draw = locked[0]
        if draw.status in (Draw.Status.COMPLETED, Draw.Status.SUPERSEDED):
            return draw
        if draw.status not in Draw.AWAITING_RESULT:
            raise domain.InvalidState("This draw's ticket list is not frozen yet.")
        Draw.objects.filter(pk=draw_id).update(status=Draw.Status.RUNNING)
        winning_index, winner, alternates = compute_result(draw, entropy.randomness)
        failpoints.hit("draw.before_save")
        now = timezone.now()
        Draw.objects.filter(pk=draw_id, status=Draw.Status.RUNNING).update(
            status=Draw.Status.COMPLETED,
            beacon_randomness=entropy.randomness,
            beacon_signature=entropy.signature,
            entropy_source=entropy.source,
            entropy_note=entropy.note,
            winning_index=winning_index,
            winning_ticket_number=winner,
            alternates=alternates,
            awarded_ticket_number=winner,
            conducted_by=actor,
            completed_at=now,
            last_error="",
            updated_at=now,
        )
        change_house_status(house_id=house_id, to_status=House.Status.DRAWN)
        if actor is not None:  # staff conducted it; the draw job's own passes are not audited
            log_action(
                actor=actor,
                action="draw_conducted",
                obj_type=Draw,
                obj_id=draw_id,
                before={"status": draw.status},
                after={
                    "status": Draw.Status.COMPLETED,
                    "entropy_source": entropy.source,
                    "winning_ticket_number": winner,
                    "awarded_ticket_number": winner,
                },
                reason=entropy.note,
            )
        outbox.emit("draw.completed", completed_payload(draw_id))
    metrics.increment("draws_completed_total", source=entropy.source)
    logger.info("draw %s of house %s completed (%s)", draw_id, house_id, entropy.source)
    return Draw.objects.get(pk=draw_id)


def compute_result(draw: Draw, randomness: str) -> tuple[int, int, list[int]]:
    """(winning index, winning ticket number, alternate ticket numbers) from stored inputs."""
    material = verify.draw_material(
        randomness_hex=randomness,
        house_id=draw.house_id,
        seed_hex=draw.seed,
        tickets_count=draw.tickets_count,
        tickets_root_hex=draw.tickets_root,
    )
    indices = verify.pick_indices(material, draw.tickets_count, draw.alternates_count)
    numbers = [number for number, _ in leaves_at(draw.ticket_list_id, indices)]
    return indices[0], numbers[0], numbers[1:]


def completed_payload(draw_id: int) -> dict:
    """``draw.completed``: what notifications need (the winner's user id stays internal)."""
    draw = Draw.objects.get(pk=draw_id)
    winner_id = (
        Ticket.objects.filter(house_id=draw.house_id, ticket_number=draw.awarded_ticket_number)
        .values_list("owner_id", flat=True)
        .first()
    )
    return {
        "draw_id": draw.pk,
        "house_id": draw.house_id,
        "winning_ticket_number": draw.awarded_ticket_number,
        "winner_user_id": winner_id,
        "entropy_source": draw.entropy_source,
        "supersedes_draw_id": draw.supersedes_id,
    }


# --- Staff --------------------------------------------------------------------


def conduct_draw(
    *,
    draw_id: int,
    actor: AbstractBaseUser,
    beacon_round: int | None = None,
    beacon_signature: str | None = None,
    entropy: str | None = None,
    source: str | None = None,
) -> Draw:
    """Staff complete a frozen draw with the fixed round's signature or manual entropy.

    The same input on a completed draw answers its recorded result; another input
    is ``invalid_state``; a wrong round or signature is ``validation_error``.
    """
    draw = Draw.objects.filter(pk=draw_id).first()
    if draw is None:
        raise domain.NotFound()
    given = _staff_entropy(
        beacon_round=beacon_round, beacon_signature=beacon_signature, entropy=entropy, source=source
    )
    if draw.status in (Draw.Status.COMPLETED, Draw.Status.SUPERSEDED):
        return _replay(draw, given)
    if draw.status == Draw.Status.SCHEDULED:
        raise domain.InvalidState("This draw's ticket list is not frozen yet.")
    if given.source == Draw.EntropySource.DRAND:
        if beacon_round != draw.beacon_round:
            raise domain.ValidationFailed(
                [
                    {
                        "field": "beacon_round",
                        "code": "wrong_round",
                        "message": f"This draw uses round {draw.beacon_round}, fixed at close.",
                    }
                ]
            )
        if not verify.verify_beacon_signature(draw.beacon_round, given.signature):
            raise domain.ValidationFailed(
                [
                    {
                        "field": "beacon_signature",
                        "code": "invalid_signature",
                        "message": f"Not a valid quicknet signature of round {draw.beacon_round}.",
                    }
                ]
            )
    try:
        completed = complete_draw(draw_id=draw_id, entropy=given, actor=actor)
    except domain.DomainError:
        raise
    except Exception as exc:
        record_failure(draw_id=draw_id, error=exc)
        raise
    assert completed is not None  # staff wait for the lock, they never skip it
    return _replay(completed, given)


def _staff_entropy(
    *,
    beacon_round: int | None,
    beacon_signature: str | None,
    entropy: str | None,
    source: str | None,
) -> Entropy:
    beacon_given = beacon_round is not None or beacon_signature is not None
    manual_given = entropy is not None or source is not None
    if beacon_given == manual_given:
        raise domain.ValidationFailed(
            [
                {
                    "field": None,
                    "code": "invalid",
                    "message": "Send either beacon_round and beacon_signature, "
                    "or entropy and source.",
                }
            ]
        )
    if beacon_given:
        errors = []
        if beacon_round is None:
            errors.append({"field": "beacon_round", "code": "required", "message": "Required."})
        if not beacon_signature or not SIGNATURE_HEX.fullmatch(beacon_signature):
            errors.append(
                {
                    "field": "beacon_signature",
                    "code": "invalid",
                    "message": "The round's signature: 96 hex characters.",
                }
            )
        if errors:
            raise domain.ValidationFailed(errors)
        signature = beacon_signature.lower()
        return Entropy(
            source=Draw.EntropySource.DRAND,
            randomness=verify.beacon_randomness(signature),
            signature=signature,
        )
    errors = []
    if not entropy or not HEX_64.fullmatch(entropy):
        errors.append(
            {"field": "entropy", "code": "invalid", "message": "32 bytes as 64 hex characters."}
        )
    if not source or not source.strip():
        errors.append(
            {"field": "source", "code": "required", "message": "Say where the entropy came from."}
        )
    if errors:
        raise domain.ValidationFailed(errors)
    return Entropy(
        source=Draw.EntropySource.MANUAL, randomness=entropy.lower(), note=source.strip()
    )


def _replay(draw: Draw, given: Entropy) -> Draw:
    recorded = Entropy(
        source=draw.entropy_source,
        randomness=draw.beacon_randomness,
        signature=draw.beacon_signature,
        note=draw.entropy_note,
    )
    if recorded != given:
        raise domain.InvalidState(
            "This draw is already completed with other entropy; its result stands."
        )
    return draw
