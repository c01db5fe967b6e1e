from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser

from purchases.services.checkout import recover_stuck_checkouts


class Command(BaseCommand):
    help = "Resolve processing checkouts older than the bound by asking the payment gateway."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-seconds",
            type=int,
            default=None,
            help="default: CHECKOUT_STUCK_AFTER_SECONDS",
        )

    def handle(self, *args: object, **options: object) -> None:
        seconds = options["older_than_seconds"]
        outcomes = recover_stuck_checkouts(
            older_than=None if seconds is None else timedelta(seconds=seconds)
        )
        self.stdout.write(f"recovered: {outcomes or 'nothing stuck'}")
