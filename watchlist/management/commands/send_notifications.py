"""Raise due closing-soon alerts and queue stalled notification emails, as beat does."""

from typing import Any

from django.core.management.base import BaseCommand

from watchlist import notifications


class Command(BaseCommand):
    help = "Raise the 'closes within 24 h' alerts due now and queue stalled notification emails."

    def handle(self, *args: Any, **options: Any) -> None:
        raised = notifications.raise_closing_soon_alerts()
        queued = notifications.send_stalled_notifications()
        self.stdout.write(
            f"{raised} closing-soon alert(s) raised, {queued} stalled email(s) queued"
        )
