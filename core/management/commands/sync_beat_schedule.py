from django.core.management.base import BaseCommand

from core.beat_schedule import sync_beat_schedule


class Command(BaseCommand):
    help = "Write the periodic tasks declared in config/beat.py to the beat tables (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        created, updated, disabled = sync_beat_schedule()
        self.stdout.write(
            f"beat schedule: {created} created, {updated} updated, {disabled} disabled"
        )
