"""Dead letters: tasks that failed for good, stored so that staff can replay them.

A letter whose work has since been done another way (the stuck-checkout
recovery settled the checkout, the refund job refunded) is closed as
``resolved`` with the reason, so staff only see what needs them. Apps say how
to tell for their own tasks with ``register_resolver`` (core never imports
them).
"""

import logging
from collections.abc import Callable, Iterable
from typing import Any

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import metrics
from core.audit import log_action
from core.models import DeadLetter

logger = logging.getLogger(__name__)

# (args, kwargs) of a dead task -> why its work is done now, or None while it is not.
Resolver = Callable[[list[Any], dict[str, Any]], str | None]
_resolvers: dict[str, Resolver] = {}
RESOLVE_BATCH_SIZE = 500


def register_resolver(task_name: str, resolver: Resolver) -> None:
    _resolvers[task_name] = resolver


def close_resolved_dead_letters(*, batch_size: int = RESOLVE_BATCH_SIZE) -> int:
    """Close open letters whose work is done (checked by their task's resolver); returns
    how many were closed. A letter requeued or discarded meanwhile is left alone."""
    letters = list(
        DeadLetter.objects.filter(status=DeadLetter.Status.OPEN, task_name__in=list(_resolvers))
        .order_by("pk")
        .values_list("pk", "task_name", "args", "kwargs")[:batch_size]
    )
    closed = 0
    for pk, task_name, args, kwargs in letters:
        try:
            reason = _resolvers[task_name](list(args or []), dict(kwargs or {}))
        except Exception:  # a malformed letter stays open for staff, the rest go on
            logger.exception("could not tell whether dead letter #%s is resolved", pk)
            continue
        if reason is None:
            continue
        closed += DeadLetter.objects.filter(pk=pk, status=DeadLetter.Status.OPEN).update(
            status=DeadLetter.Status.RESOLVED, resolved_at=timezone.now(), resolution=reason[:4000]
        )
        metrics.increment("dead_letters_resolved_total", task=task_name)
        logger.info("dead letter #%s (%s) resolved: %s", pk, task_name, reason)
    return closed


def record_dead_letter(
    *,
    task_name: str,
    task_id: str | None,
    args: Iterable[Any] | None,
    kwargs: dict[str, Any] | None,
    request_id: str | None,
    exc: BaseException,
    retries: int,
) -> DeadLetter:
    letter = DeadLetter.objects.create(
        task_name=task_name,
        task_id=task_id or "",
        args=list(args or []),
        kwargs=dict(kwargs or {}),
        request_id=request_id or "",
        exception_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
        last_error=str(exc)[:4000] or type(exc).__name__,
        retries=retries,
    )
    logger.error("task %s[%s] dead-lettered as #%s: %r", task_name, task_id, letter.pk, exc)
    metrics.increment("dead_letters_total", task=task_name)
    return letter


def requeue_dead_letters(
    *, ids: Iterable[int] | None = None, actor: AbstractBaseUser | None = None
) -> int:
    """Send open dead letters (all, or those ``ids``) back to their task; returns how many
    were sent.

    Each row is claimed under ``skip_locked`` and marked requeued in one
    transaction, so two staff clicking at once requeue it once. After the commit
    each letter is sent on its own: one that cannot be sent (broker down) is
    put back to ``open`` with the error in ``requeue_error``, so a later requeue
    finds it again. Called inside an outer transaction, the sends wait for its
    commit and the count is of the letters claimed. A task that fails again
    writes a new dead letter.
    """
    with transaction.atomic():
        letters = DeadLetter.objects.select_for_update(skip_locked=True).filter(
            status=DeadLetter.Status.OPEN
        )
        if ids is not None:
            letters = letters.filter(pk__in=list(ids))
        letters = list(letters.order_by("pk"))
        if not letters:
            return 0
        staff = actor if actor is not None and actor.is_authenticated else None
        DeadLetter.objects.filter(pk__in=[letter.pk for letter in letters]).update(
            status=DeadLetter.Status.REQUEUED,
            requeued_at=timezone.now(),
            requeued_by=staff,
            requeue_count=F("requeue_count") + 1,
            requeue_error="",
        )
        if staff is not None:  # the replay command and tests requeue without a staff user
            for letter in letters:
                log_action(
                    actor=staff,
                    action="dead_letter_requeued",
                    obj_type=DeadLetter,
                    obj_id=letter.pk,
                    before={"status": letter.status},
                    after={"status": DeadLetter.Status.REQUEUED},
                )
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _send_claimed(letters), robust=True)
        return len(letters)
    return _send_claimed(letters)


def _send_claimed(letters: list[DeadLetter]) -> int:
    sent = 0
    for letter in letters:
        try:
            _send(letter)
        except Exception as exc:  # broker unreachable, unknown task...: open it again
            logger.exception("dead letter #%s could not be requeued", letter.pk)
            metrics.increment("dead_letter_requeue_failures_total", task=letter.task_name)
            DeadLetter.objects.filter(pk=letter.pk, status=DeadLetter.Status.REQUEUED).update(
                status=DeadLetter.Status.OPEN,
                requeue_error=f"{type(exc).__name__}: {exc}"[:4000],
            )
        else:
            sent += 1
    return sent


def discard_dead_letters(*, ids: Iterable[int], actor: AbstractBaseUser | None = None) -> int:
    """Give up on open dead letters; each discard by staff is audited."""
    with transaction.atomic():
        discarded = list(
            DeadLetter.objects.select_for_update(skip_locked=True)
            .filter(pk__in=list(ids), status=DeadLetter.Status.OPEN)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        DeadLetter.objects.filter(pk__in=discarded).update(status=DeadLetter.Status.DISCARDED)
        if actor is not None and actor.is_authenticated:
            for letter_id in discarded:
                log_action(
                    actor=actor,
                    action="dead_letter_discarded",
                    obj_type=DeadLetter,
                    obj_id=letter_id,
                    before={"status": DeadLetter.Status.OPEN},
                    after={"status": DeadLetter.Status.DISCARDED},
                )
    return len(discarded)


def _send(letter: DeadLetter) -> None:
    headers = {"request_id": letter.request_id} if letter.request_id else None
    task = current_app.tasks.get(letter.task_name)
    if task is None:  # not imported in this process: send by name
        current_app.send_task(
            letter.task_name, args=letter.args, kwargs=letter.kwargs, headers=headers
        )
        return
    task.apply_async(args=letter.args, kwargs=letter.kwargs, headers=headers)
