from django.core.management.base import BaseCommand

from reservations import services


class Command(BaseCommand):
    help = "Rebuild the Redis inventory of every active house from the database; report drift."

    def handle(self, *args: object, **options: object) -> None:
        drifts = services.sync_inventory()
        if drifts is None:
            self.stdout.write("another inventory sync is running; nothing done")
            return
        for drift in drifts:
            previous = "missing" if drift.redis_available is None else drift.redis_available
            self.stdout.write(
                f"house {drift.house_id}: redis {previous} -> {drift.database_available}"
                f" (drift {drift.tickets:+d})"
            )
        self.stdout.write(f"synced {len(drifts)} houses")
