"""Writes owned by the core app."""

from django.utils import timezone

from core.models import IdempotencyRecord


def purge_expired_idempotency_keys(*, batch_size: int = 5000) -> int:
    """Delete expired idempotency records in bounded batches; returns how many went."""
    purged = 0
    while True:
        batch = list(
            IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).values_list(
                "pk", flat=True
            )[:batch_size]
        )
        if not batch:
            return purged
        purged += IdempotencyRecord.objects.filter(pk__in=batch).delete()[0]
