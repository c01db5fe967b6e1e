"""Write ``settings.PERIODIC_JOBS`` (declared in ``config/beat.py``) into django-celery-beat's
database tables."""

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

MANAGED_DESCRIPTION = "Declared in config/beat.py; edits are overwritten on deploy."


def sync_beat_schedule() -> tuple[int, int, int]:
    created = updated = 0
    with transaction.atomic():
        for job in settings.PERIODIC_JOBS:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=job.every_seconds, period=IntervalSchedule.SECONDS
            )
            _task, was_created = PeriodicTask.objects.update_or_create(
                name=job.name,
                defaults={
                    "task": job.task,
                    "interval": interval,
                    "enabled": True,
                    "description": MANAGED_DESCRIPTION,
                },
            )
            created += was_created
            updated += not was_created
        declared = [job.name for job in settings.PERIODIC_JOBS]
        disabled = (
            PeriodicTask.objects.filter(description=MANAGED_DESCRIPTION, enabled=True)
            .exclude(name__in=declared)
            .update(enabled=False)
        )
    return created, updated, disabled
