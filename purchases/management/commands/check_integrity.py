from django.core.management.base import BaseCommand, CommandError

from purchases import selectors


class Command(BaseCommand):
    help = (
        "Check every house's counters against its rows (sold = active tickets, reserved = "
        "pending + processing, participants = distinct holders); non-zero exit on a mismatch."
    )

    def handle(self, *args: object, **options: object) -> None:
        mismatches = selectors.integrity_mismatches()
        for mismatch in mismatches:
            self.stderr.write(str(mismatch))
        if mismatches:
            houses = sorted({m.house_id for m in mismatches})
            raise CommandError(f"integrity check failed for house(s) {houses}")
        self.stdout.write("integrity ok")
