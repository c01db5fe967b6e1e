from django.core.management.base import BaseCommand

from purchases.services.refunds import retry_due_refunds


class Command(BaseCommand):
    help = "Hand every due refund (pending or failed past its backoff) to a refund attempt."

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(f"{retry_due_refunds()} refund(s) retried")
