from django.core.management.base import BaseCommand, CommandParser

from core.dead_letters import requeue_dead_letters


class Command(BaseCommand):
    help = "Requeue open dead letters (all, or the ids given) to their tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="dead letter ids (default: all open)")

    def handle(self, *args: object, **options: object) -> None:
        ids = options["ids"] or None
        count = requeue_dead_letters(ids=ids)
        self.stdout.write(f"requeued {count} dead letter(s)")
