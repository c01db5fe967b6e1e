import json

from django.core.management.base import BaseCommand

from draws.services.passes import run_due


class Command(BaseCommand):
    help = (
        "One pass of the draw job: close due houses, freeze or cancel, open refunds of "
        "cancelled lotteries, run draws whose beacon round is out (drand mode)."
    )

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(json.dumps(run_due(), sort_keys=True))
