"""Writes owned by the core app."""

from django.utils import timezone

from core import shutdown
from core.models import IdempotencyRecord

PURGE_BATCH_SIZE = 5000
PURGE_MAX_BATCHES = 20  # 100,000 records per hourly run; the rest waits for the next


def purge_expired_idempotency_keys(
    *, batch_size: int = PURGE_BATCH_SIZE, max_batches: int = PURGE_MAX_BATCHES
) -> int:
    """Delete expired idempotency records in bounded batches; returns how many went."""
    purged = 0
    for _ in shutdown.batches("purge_expired_idempotency_keys", max_batches=max_batches):
        batch = list(
            IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).values_list(
                "pk", flat=True
            )[:batch_size]
        )
        if not batch:
            return purged
        purged += IdempotencyRecord.objects.filter(pk__in=batch).delete()[0]
    return purged
