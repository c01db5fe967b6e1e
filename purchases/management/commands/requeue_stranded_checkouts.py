from django.core.management.base import BaseCommand

from purchases.services.checkout import requeue_stranded_checkouts


class Command(BaseCommand):
    help = "Queue a drain for each house whose checkouts lost their task message."

    def handle(self, *args: object, **options: object) -> None:
        queued = requeue_stranded_checkouts()
        self.stdout.write(f"drains queued: {queued}")
