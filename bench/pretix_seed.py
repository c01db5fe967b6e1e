"""Seed pretix for bench/pretix_bench.py; runs in pretix's own venv, never in ours.

    PRETIX_CONFIG_FILE=... <pretix venv>/bin/python bench/pretix_seed.py

Creates (or reuses) organizer ``bench``, a live event ``bench`` with one
5.00 EUR item in an unlimited-size quota (like our 10,000,000-ticket house),
and an organizer team with an API token allowed to create orders; prints
``<item id> <token>`` on the last line.
"""

import os
from datetime import timedelta
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pretix.settings")

import django

django.setup()

from django.utils.timezone import now  # noqa: E402
from django_scopes import scopes_disabled  # noqa: E402
from pretix.base.models import Event, Item, Organizer, Team  # noqa: E402


def main() -> None:
    with scopes_disabled():
        organizer, _ = Organizer.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        event = Event.objects.filter(organizer=organizer, slug="bench").first()
        if event is None:
            event = Event.objects.create(
                organizer=organizer,
                name="Bench raffle",
                slug="bench",
                currency="EUR",
                date_from=now() + timedelta(days=30),
                presale_start=now() - timedelta(hours=1),
                live=True,
                plugins="pretix.plugins.banktransfer,pretix.plugins.manualpayment",
            )
        item = event.items.first()
        if item is None:
            item = Item.objects.create(
                event=event, name="Ticket", default_price=Decimal("5.00"), admission=True
            )
            quota = event.quotas.create(name="Tickets", size=10_000_000)
            quota.items.add(item)
        team = Team.objects.filter(organizer=organizer, name="Bench API").first()
        if team is None:
            team = Team.objects.create(
                organizer=organizer,
                name="Bench API",
                all_events=True,
                all_event_permissions=True,
                all_organizer_permissions=True,
            )
        token = team.tokens.filter(active=True).first() or team.tokens.create(name="bench")
        print(item.pk, token.token)


if __name__ == "__main__":
    main()
