"""Demo data for `make run` / `make stack`. Idempotent: running it again changes nothing."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token

from lottery.demo import seed_demo_houses
from lottery.models import PlayerProfile

User = get_user_model()

STAFF = ("admin", "admin-demo-password")
PLAYER_PASSWORD = "player-demo-password"  # noqa: S105  (public demo credentials)
PLAYERS = [
    # username, verified, account status
    ("alice", True, PlayerProfile.AccountStatus.ACTIVE),
    ("bob", True, PlayerProfile.AccountStatus.ACTIVE),
    ("carol", False, PlayerProfile.AccountStatus.ACTIVE),
    ("dave", True, PlayerProfile.AccountStatus.SUSPENDED),
]


class Command(BaseCommand):
    help = "Create demo staff, players and houses (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        with transaction.atomic():
            self._seed_users()
            seed_demo_houses(self.stdout)
        self.stdout.write(self.style.SUCCESS("demo data ready"))

    def _seed_users(self) -> None:
        username, password = STAFF
        if not User.objects.filter(username=username).exists():
            User.objects.create_superuser(username, f"{username}@example.com", password)
        for username, verified, account_status in PLAYERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(
                    username, f"{username}@example.com", PLAYER_PASSWORD
                )
            PlayerProfile.objects.update_or_create(
                user=user, defaults={"is_verified": verified, "account_status": account_status}
            )
            Token.objects.get_or_create(user=user)
