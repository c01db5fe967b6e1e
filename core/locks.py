"""The one place that takes row locks on houses, reservations, payments and refunds.

Every transaction that locks rows of these models locks them here, in one
global order, so two transactions can never wait for each other in a circle:

    house -> draw -> reservation -> payment -> refund

(a parent row before its children, as pretix and Saleor do). Rows of one
model are locked in the order of their queryset; a caller locking several
rows of one model orders them (or skips locked ones, as background sweeps do).

One lock strength for all: ``FOR NO KEY UPDATE``. Every locking path then
changes non-key columns only (counters, statuses), which is the lock its own
UPDATE takes anyway, so nothing is ever upgraded mid-transaction. Unlike
``FOR UPDATE`` it does not conflict with ``FOR KEY SHARE``, the lock PostgreSQL
takes on a parent row for every insert of a child pointing at it (a ticket,
reservation or participant row naming the house, a payment naming the
reservation, a refund naming the payment): inserts elsewhere are not queued
behind a checkout or a sweep. No path ever deletes or re-keys these rows,
which is the one thing ``FOR UPDATE`` would be needed for.

``core`` knows the apps only by model label, never by import.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from django.db.models import QuerySet

# The global lock order, by model label. Add a model here before locking its rows.
LOCK_ORDER: tuple[str, ...] = (
    "lottery.House",
    "draws.Draw",
    "reservations.Reservation",
    "payments.Payment",
    "payments.Refund",
)


class SkipLocked(NamedTuple):
    """Wraps a queryset whose rows already locked by someone else are left out (sweeps)."""

    queryset: QuerySet[Any]


def lock_rows(*querysets: QuerySet[Any] | SkipLocked) -> list[list[Any]]:
    """Lock the rows of each queryset ``FOR NO KEY UPDATE``, models in ``LOCK_ORDER``.

    Call inside ``transaction.atomic()``. Returns the rows of each queryset (model
    instances, or dicts/tuples for ``values()``/``values_list()``) in the order
    the querysets were given, whatever order they were locked in. At most one
    queryset per model.
    """
    plan: list[tuple[int, int, QuerySet[Any]]] = []
    for position, item in enumerate(querysets):
        skip_locked = isinstance(item, SkipLocked)
        queryset = item.queryset if skip_locked else item
        label = queryset.model._meta.label
        if label not in LOCK_ORDER:
            raise ValueError(f"{label} is not in core.locks.LOCK_ORDER")
        locked = queryset.select_for_update(no_key=True, skip_locked=skip_locked, of=("self",))
        plan.append((LOCK_ORDER.index(label), position, locked))
    ranks = [rank for rank, _, _ in plan]
    if len(set(ranks)) != len(ranks):
        raise ValueError("lock_rows takes at most one queryset per model")
    rows: list[list[Any]] = [[] for _ in querysets]
    for _, position, locked in sorted(plan, key=lambda step: step[0]):
        rows[position] = list(locked)
    return rows
