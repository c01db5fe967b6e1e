"""Players (houses, tickets and promotions join them in later issues)."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class PlayerProfile(models.Model):
    """What the raffle needs to know about a user beyond ``auth.User``."""

    class AccountStatus(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        BANNED = "banned", "Banned"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="player_profile"
    )
    is_verified = models.BooleanField(default=False)
    account_status = models.CharField(
        max_length=16, choices=AccountStatus.choices, default=AccountStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(account_status__in=["active", "suspended", "banned"]),
                name="player_account_status_known",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.account_status})"

    @property
    def is_eligible(self) -> bool:
        return self.is_verified and self.account_status == self.AccountStatus.ACTIVE
