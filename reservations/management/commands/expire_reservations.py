from django.core.management.base import BaseCommand

from reservations import services


class Command(BaseCommand):
    help = "Expire pending reservations past their expires_at and release what they hold."

    def handle(self, *args: object, **options: object) -> None:
        expired = services.expire_due_reservations()
        self.stdout.write(f"expired {expired} reservations")
