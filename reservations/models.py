"""Reservations: tickets held for a player while they pay."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class ReservationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"
    REFUND_PENDING = "refund_pending", "Refund pending"
    REFUNDED = "refunded", "Refunded"


class Reservation(models.Model):
    """``quantity`` tickets of one house held for one player until ``expires_at``.

    Every status change is a conditional UPDATE on the current status
    (invariant 7); the counters it holds on the house are released in the same
    transaction as the transition that frees them.
    """

    Status = ReservationStatus

    # Statuses whose tickets count as reserved on the house (not yet sold).
    # refund_pending: paid but not issued; held until the refund succeeds (invariant 6).
    HOLDING_RESERVED = (Status.PENDING, Status.PROCESSING, Status.REFUND_PENDING)
    # Statuses that count against the player's per-house allowance.
    HOLDING = (Status.PENDING, Status.PROCESSING, Status.COMPLETED, Status.REFUND_PENDING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The composite indexes below lead with house and user; one-column indexes on
    # them would only slow the hot insert (promotion: a partial index, below).
    house = models.ForeignKey(
        "lottery.House", on_delete=models.PROTECT, related_name="reservations", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="reservations",
        db_index=False,
    )
    quantity = models.IntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    discount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_price = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    promotion = models.ForeignKey(
        "lottery.Promotion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reservations",
        db_index=False,
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    expires_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Staff console actions (admin checks them; console's migration grants them).
        permissions = [
            ("expire_reservation", "Can expire a pending reservation now"),
        ]
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReservationStatus.values),
                name="reservation_status_known",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="reservation_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gt=0), name="reservation_unit_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(discount__gte=0), name="reservation_discount_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(total_price__gte=0), name="reservation_total_non_negative"
            ),
            # The price charged is exactly what the rows say: no rounding drift.
            models.CheckConstraint(
                condition=Q(total_price=F("unit_price") * F("quantity") - F("discount")),
                name="reservation_total_is_price_times_quantity_minus_discount",
            ),
        ]
        indexes = [
            # The expiry sweep reads only pending rows in expiry order.
            models.Index(
                fields=["expires_at"],
                name="reservation_pending_expiry_idx",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["user", "-created_at"], name="reservation_user_recent_idx"),
            models.Index(fields=["house", "status"], name="reservation_house_status_idx"),
            # recover_stuck_checkouts reads only processing rows, oldest first.
            models.Index(
                fields=["processed_at"],
                name="reservation_processing_idx",
                condition=Q(status="processing"),
            ),
            models.Index(
                fields=["promotion"],
                name="reservation_promotion_idx",
                condition=Q(promotion__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"
