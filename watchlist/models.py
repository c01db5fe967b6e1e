"""Watched houses, the house alerts raised once, and one row per notification sent.

``NotificationDelivery`` is written before an email goes out and is unique per
(event, recipient, kind): a relay that hands the same event over twice finds the
row and sends nothing more.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class WatchlistItem(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlist_items"
    )
    house = models.ForeignKey("lottery.House", on_delete=models.CASCADE, related_name="watchers")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "house"], name="watchlist_item_unique")
        ]
        # The unique index serves "my watchlist"; this one serves "who watches this house".
        indexes = [models.Index(fields=["house"], name="watchlist_item_house_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} watches house {self.house_id}"


class HouseAlertKind(models.TextChoices):
    CLOSING_SOON = "closing_soon", "Closing within 24 h"
    SOLD_OUT = "sold_out", "Sold out"


class HouseAlert(models.Model):
    """A house event that has no event of its own elsewhere, raised at most once per house."""

    Kind = HouseAlertKind

    house = models.ForeignKey("lottery.House", on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32, choices=HouseAlertKind.choices)
    raised_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["house", "kind"], name="house_alert_once_per_house"),
            models.CheckConstraint(
                condition=Q(kind__in=HouseAlertKind.values), name="house_alert_kind_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of house {self.house_id}"


class NotificationKind(models.TextChoices):
    HOUSE_CLOSING_SOON = "house_closing_soon", "A watched house closes within 24 h"
    HOUSE_SOLD_OUT = "house_sold_out", "A watched house sold out"
    HOUSE_DRAWN = "house_drawn", "A watched or entered house was drawn"
    HOUSE_CANCELLED = "house_cancelled", "A watched or entered house was cancelled"
    PURCHASE_COMPLETED = "purchase_completed", "Tickets issued"
    PURCHASE_REFUNDED = "purchase_refunded", "Purchase refunded"
    DRAW_WON = "draw_won", "You won"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (dead letter)"


class NotificationDelivery(models.Model):
    """One email to one player about one outbox event; written before it is sent."""

    Kind = NotificationKind
    Status = DeliveryStatus

    event_id = models.BigIntegerField(help_text="The core.OutboxEvent this email is about.")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    email = models.EmailField(max_length=254)
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "recipient", "kind"], name="notification_once_per_event"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=NotificationKind.values), name="notification_kind_known"
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="notification_status_known"
            ),
            models.CheckConstraint(
                condition=Q(attempts__gte=0), name="notification_attempts_non_negative"
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "updated_at"],
                name="notification_unsent_idx",
                condition=Q(status__in=["pending", "sending"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.email} (event {self.event_id}, {self.status})"
