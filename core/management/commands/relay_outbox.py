from django.core.management.base import BaseCommand

from core.outbox import relay_pending_events


class Command(BaseCommand):
    help = "Deliver due outbox events to their handlers now (what the beat relay does)."

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(f"delivered {relay_pending_events()} event(s)")
