"""Payments for reservations, their refunds, and the sandbox gateway's own ledger."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Payment(models.Model):
    """The charge for one reservation (gateway idempotency key = reservation id)."""

    Status = PaymentStatus

    reservation = models.ForeignKey(
        "reservations.Reservation", on_delete=models.PROTECT, related_name="payments"
    )
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    gateway = models.CharField(max_length=32)
    # The client's card token from the gateway's own widget (never a card number).
    payment_token = models.CharField(max_length=255)
    idempotency_key = models.CharField(max_length=255, unique=True)
    gateway_reference = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decline_code = models.CharField(max_length=64, blank=True)
    # Sum of refunds asked for that may still pay out (pending, succeeded, needs attention).
    refunded_total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal(0))
    # Stamped (conditionally, while pending) before every charge call, so recovery
    # never fails a payment whose charge may still be in flight.
    charge_attempted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Staff console actions (admin checks them; console's migration grants them).
        permissions = [
            ("refund_purchase", "Can refund a purchase in full"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=PaymentStatus.values),
                name="payment_status_known",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_non_negative"),
            models.CheckConstraint(
                condition=Q(refunded_total__gte=0), name="payment_refunded_non_negative"
            ),
            # Invariant 6: a refund never exceeds what was paid.
            models.CheckConstraint(
                condition=Q(refunded_total__lte=F("amount")),
                name="payment_refunds_within_amount",
            ),
            models.UniqueConstraint(fields=["reservation"], name="payment_one_per_reservation"),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="payment_pending_created_idx",
            )
        ]

    def __str__(self) -> str:
        return f"payment {self.pk} {self.amount} {self.currency} ({self.status})"


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (will retry)"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


class Refund(models.Model):
    Status = RefundStatus

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    reason = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="refunds_requested",
    )
    idempotency_key = models.CharField(max_length=255, unique=True, default=uuid.uuid4)
    gateway_reference = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Staff console actions (admin checks them; console's migration grants them).
        permissions = [
            ("retry_refund", "Can retry a refund now"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RefundStatus.values),
                name="refund_status_known",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]
        indexes = [
            # retry_refunds reads only refunds that are still due.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=[RefundStatus.PENDING, RefundStatus.FAILED]),
                name="refund_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"refund {self.pk} {self.amount} ({self.status})"


class SandboxEntryKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    REFUND = "refund", "Refund"


class SandboxEntryStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    DECLINED = "declined", "Declined"
    FAILED = "failed", "Failed"


class SandboxLedgerEntry(models.Model):
    """What the sandbox gateway "did": its own books, separate from ours."""

    Kind = SandboxEntryKind

    Status = SandboxEntryStatus

    kind = models.CharField(max_length=8, choices=Kind.choices)
    idempotency_key = models.CharField(max_length=255, unique=True)
    reference = models.CharField(max_length=64, unique=True)
    token = models.CharField(max_length=255)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices)
    code = models.CharField(max_length=64, blank=True)
    charge = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "sandbox ledger entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=SandboxEntryKind.values), name="sandbox_entry_kind_known"
            ),
            models.CheckConstraint(
                condition=Q(status__in=SandboxEntryStatus.values),
                name="sandbox_entry_status_known",
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="sandbox_entry_amount_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.reference} ({self.status})"
