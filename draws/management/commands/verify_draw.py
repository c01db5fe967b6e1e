import json

from django.core.management.base import BaseCommand, CommandError
from rest_framework.renderers import JSONRenderer

from draws import selectors, verify
from draws.api.serializers import DrawSerializer, ticket_document_chunks


class Command(BaseCommand):
    help = (
        "Recompute a draw with draws/verify.py from the API's own documents "
        "(GET /api/v1/draws/{id}/ and /tickets/); exits 1 when a check failed."
    )

    def add_arguments(self, parser: object) -> None:
        parser.add_argument("draw_id", type=int)

    def handle(self, *args: object, draw_id: int, **options: object) -> None:
        draw = selectors.draws_list().filter(pk=draw_id).first()
        if draw is None:
            raise CommandError(f"draw {draw_id} does not exist")
        if not draw.is_frozen:
            raise CommandError(f"draw {draw_id} has no frozen ticket list yet")
        # Exactly the bytes the API serves, parsed as a verifier would parse them.
        draw_document = json.loads(JSONRenderer().render(DrawSerializer(draw).data))
        tickets_document = json.loads(b"".join(ticket_document_chunks(draw)))
        report = verify.verify_documents(draw_document, tickets_document)
        self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        if not report["ok"]:
            raise SystemExit(1)
