"""Players, houses, participants and promotions.

Every invariant on these rows is also a named database constraint, so no code
path (admin, shell, a buggy service, a race) can store a state that breaks it.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper


class AccountStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    BANNED = "banned", "Banned"


class PlayerProfile(models.Model):
    """What the raffle needs to know about a user beyond ``auth.User``."""

    AccountStatus = AccountStatus

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="player_profile"
    )
    is_verified = models.BooleanField(default=False)
    account_status = models.CharField(
        max_length=16, choices=AccountStatus.choices, default=AccountStatus.ACTIVE
    )
    # Emails about purchases, watched houses and draws (watchlist.notifications).
    notifications_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(account_status__in=AccountStatus.values),
                name="player_account_status_known",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.account_status})"

    @property
    def is_eligible(self) -> bool:
        return self.is_verified and self.account_status == self.AccountStatus.ACTIVE


class HouseStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    CLOSED = "closed", "Closed"
    DRAWN = "drawn", "Drawn"
    CANCELLED = "cancelled", "Cancelled"


class House(models.Model):
    """A property raffled as ``total_tickets`` numbered tickets.

    ``tickets_sold``, ``tickets_reserved`` and ``participants_count`` are
    counters changed only by conditional UPDATEs in the services; the CHECKs
    below make overselling and exceeding the participant cap impossible.
    """

    Status = HouseStatus

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    address = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=100)
    property_value = models.DecimalField(max_digits=14, decimal_places=2)
    ticket_price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    total_tickets = models.IntegerField()
    tickets_sold = models.IntegerField(default=0)
    tickets_reserved = models.IntegerField(default=0)
    # Next ticket number to hand out; numbers are allocated as a block under the row lock.
    next_ticket_number = models.BigIntegerField(default=1)
    participant_cap = models.IntegerField(null=True, blank=True)
    participants_count = models.IntegerField(default=0)
    min_tickets_per_purchase = models.IntegerField(default=1)
    max_tickets_per_purchase = models.IntegerField(default=10)
    max_tickets_per_user = models.IntegerField(null=True, blank=True)
    min_participation_percent = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    sales_start_at = models.DateTimeField()
    sales_end_at = models.DateTimeField()
    # SHA-256 hex of the draw seed, published when the house goes active (draws app).
    draw_commitment = models.CharField(max_length=64, blank=True)
    # The secret seed itself (32 bytes), set once with the commitment. Never shown by the
    # API, the admin or a log line: the draws app publishes it in the draw record at close.
    draw_seed = models.BinaryField(null=True, blank=True, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Staff console actions (admin checks them; console's migration grants them).
        permissions = [
            ("cancel_house", "Can cancel a house's lottery (refunds every purchase)"),
            ("soft_delete_house", "Can soft-delete a house with no tickets"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=HouseStatus.values),
                name="house_status_known",
            ),
            models.CheckConstraint(condition=Q(ticket_price__gt=0), name="house_price_positive"),
            models.CheckConstraint(
                condition=Q(property_value__gte=0), name="house_property_value_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="house_currency_iso_code"
            ),
            models.CheckConstraint(condition=Q(total_tickets__gt=0), name="house_total_positive"),
            models.CheckConstraint(
                condition=Q(tickets_sold__gte=0), name="house_sold_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(tickets_reserved__gte=0), name="house_reserved_non_negative"
            ),
            # Invariant 1: never oversell.
            models.CheckConstraint(
                condition=Q(tickets_sold__lte=F("total_tickets") - F("tickets_reserved")),
                name="house_never_oversold",
            ),
            models.CheckConstraint(
                condition=Q(next_ticket_number__gte=1), name="house_ticket_numbers_start_at_one"
            ),
            models.CheckConstraint(
                condition=Q(participant_cap__isnull=True) | Q(participant_cap__gt=0),
                name="house_participant_cap_positive",
            ),
            models.CheckConstraint(
                condition=Q(participants_count__gte=0), name="house_participants_non_negative"
            ),
            # Invariant 3: never more distinct players than the cap.
            models.CheckConstraint(
                condition=Q(participant_cap__isnull=True)
                | Q(participants_count__lte=F("participant_cap")),
                name="house_participants_within_cap",
            ),
            models.CheckConstraint(
                condition=Q(min_tickets_per_purchase__gte=1),
                name="house_min_purchase_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_tickets_per_purchase__gte=F("min_tickets_per_purchase")),
                name="house_purchase_bounds_ordered",
            ),
            models.CheckConstraint(
                condition=Q(max_tickets_per_user__isnull=True)
                | Q(max_tickets_per_user__gte=F("min_tickets_per_purchase")),
                name="house_per_user_limit_reachable",
            ),
            models.CheckConstraint(
                condition=Q(min_participation_percent__gte=0, min_participation_percent__lte=100),
                name="house_min_participation_is_percent",
            ),
            models.CheckConstraint(
                condition=Q(sales_start_at__lt=F("sales_end_at")),
                name="house_sales_window_ordered",
            ),
            models.CheckConstraint(
                condition=Q(draw_commitment="") | Q(draw_commitment__regex=r"^[0-9a-f]{64}$"),
                name="house_commitment_is_sha256_hex",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "sales_end_at"], name="house_status_end_idx"),
            models.Index(fields=["city"], name="house_city_idx"),
            models.Index(fields=["ticket_price"], name="house_price_idx"),
            models.Index(fields=["created_at"], name="house_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"

    @property
    def tickets_available(self) -> int:
        return self.total_tickets - self.tickets_sold - self.tickets_reserved

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class HouseParticipant(models.Model):
    """A player holding tickets (pending, processing or completed) in a house.

    The row exists exactly while the player holds something; ``tickets_held``
    is what counts against ``House.max_tickets_per_user``.
    """

    # participant_once_per_house (house, user) serves lookups by house.
    house = models.ForeignKey(
        House, on_delete=models.PROTECT, related_name="participants", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="house_participations"
    )
    tickets_held = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["house", "user"], name="participant_once_per_house"),
            models.CheckConstraint(
                condition=Q(tickets_held__gt=0), name="participant_holds_tickets"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.house_id} ({self.tickets_held})"


class Promotion(models.Model):
    """A discount code: a percentage or a fixed amount, with redemption limits.

    ``times_redeemed`` counts live redemptions and is changed only by
    conditional UPDATEs, so the CHECK against ``max_redemptions`` holds under
    concurrent use.
    """

    code = models.CharField(max_length=40)
    description = models.CharField(max_length=255, blank=True)
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    discount_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    is_active = models.BooleanField(default=True)
    max_redemptions = models.IntegerField(null=True, blank=True)
    per_user_limit = models.IntegerField(null=True, blank=True)
    times_redeemed = models.IntegerField(default=0)
    house = models.ForeignKey(
        House, on_delete=models.PROTECT, null=True, blank=True, related_name="promotions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(Upper("code"), name="promotion_code_unique_ci"),
            models.CheckConstraint(
                condition=Q(code__regex=r"^[A-Za-z0-9_-]+$"), name="promotion_code_charset"
            ),
            models.CheckConstraint(
                condition=(Q(discount_percent__isnull=False) & Q(discount_amount__isnull=True))
                | (Q(discount_percent__isnull=True) & Q(discount_amount__isnull=False)),
                name="promotion_exactly_one_discount_kind",
            ),
            models.CheckConstraint(
                condition=Q(discount_percent__isnull=True)
                | Q(discount_percent__gt=0, discount_percent__lte=100),
                name="promotion_percent_in_range",
            ),
            models.CheckConstraint(
                condition=Q(discount_amount__isnull=True)
                | Q(discount_amount__gt=0, currency__regex=r"^[A-Z]{3}$"),
                name="promotion_amount_positive_with_currency",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__lt=F("valid_until")), name="promotion_window_ordered"
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True) | Q(max_redemptions__gt=0),
                name="promotion_max_redemptions_positive",
            ),
            models.CheckConstraint(
                condition=Q(per_user_limit__isnull=True) | Q(per_user_limit__gt=0),
                name="promotion_per_user_limit_positive",
            ),
            models.CheckConstraint(
                condition=Q(times_redeemed__gte=0), name="promotion_redeemed_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True)
                | Q(times_redeemed__lte=F("max_redemptions")),
                name="promotion_never_over_redeemed",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class PromotionRedemption(models.Model):
    """One use of a promotion by one reservation.

    ``slot`` numbers a player's live uses of a code (1..per_user_limit); the
    unique (promotion, user, slot) makes two concurrent uses of the same slot
    impossible, which is how the per-user limit holds under a race.
    """

    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, related_name="redemptions")
    reservation = models.OneToOneField(
        "reservations.Reservation", on_delete=models.CASCADE, related_name="promotion_redemption"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    slot = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "user", "slot"], name="promotion_redemption_slot_once"
            ),
            models.CheckConstraint(
                condition=Q(slot__isnull=True) | Q(slot__gte=1),
                name="promotion_redemption_slot_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.promotion_id} -> {self.reservation_id}"
