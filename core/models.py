"""Cross-cutting tables: idempotency records, the transactional outbox, dead letters."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


class IdempotencyStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"


class IdempotencyRecord(models.Model):
    """One client ``Idempotency-Key`` per user, with the response it produced."""

    Status = IdempotencyStatus

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    # SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user"),
            models.CheckConstraint(
                condition=Q(status__in=IdempotencyStatus.values),
                name="idempotency_status_known",
            ),
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key} ({self.status})"


class OutboxEvent(models.Model):
    """A domain event written in the same transaction as the change it describes."""

    event_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The relay may claim the event from this time on: pushed forward by a claim
    # (a lease, so a crashed relay's events come back) and by failed deliveries.
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at", "id"],
                condition=Q(delivered_at__isnull=True),
                name="outbox_undelivered_idx",
            ),
            models.Index(fields=["event_type", "created_at"], name="outbox_type_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk}"


class OutboxDelivery(models.Model):
    """One handler finished with one event; it is never called for that event again."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    handler = models.CharField(max_length=200)
    delivered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event", "handler"], name="outbox_delivery_once_per_handler"
            )
        ]

    def __str__(self) -> str:
        return f"{self.handler} <- {self.event_id}"


class DeadLetterStatus(models.TextChoices):
    OPEN = "open", "Open"
    REQUEUED = "requeued", "Requeued"
    DISCARDED = "discarded", "Discarded"
    # The work it stood for was done since (e.g. recovery settled the checkout).
    RESOLVED = "resolved", "Resolved"


class DeadLetter(models.Model):
    """A task that failed for good (retries exhausted), kept so staff can replay it."""

    Status = DeadLetterStatus

    task_name = models.CharField(max_length=200)
    task_id = models.CharField(max_length=255, blank=True)
    args = models.JSONField(default=list, encoder=DjangoJSONEncoder)
    kwargs = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    request_id = models.CharField(max_length=64, blank=True)
    exception_type = models.CharField(max_length=200)
    last_error = models.TextField()
    retries = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    requeued_at = models.DateTimeField(null=True, blank=True)
    requeued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requeue_count = models.PositiveIntegerField(default=0)
    # Why the last requeue could not be sent (the letter is open again), else empty.
    requeue_error = models.TextField(blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True, default="")

    class Meta:
        # Staff console actions (admin checks them; console's migration grants them).
        permissions = [
            ("replay_deadletter", "Can replay (requeue) a dead letter"),
            ("discard_deadletter", "Can discard a dead letter"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DeadLetterStatus.values),
                name="dead_letter_status_known",
            )
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="dead_letter_status_idx")]

    def __str__(self) -> str:
        return f"{self.task_name} ({self.status})"


class AuditEntry(models.Model):
    """One staff write: who did what to which object, written in the write's transaction.

    Only ``core.audit.log_action`` creates rows; nothing updates or deletes them.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audit_entries"
    )
    # Stable snake_case name of the staff action, e.g. ``house_paused``.
    action = models.CharField(max_length=64)
    # ``app_label.model_name`` of the object written, e.g. ``lottery.house``.
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    # Only the fields that changed: {field: value} before and after the write.
    before = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    after = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    reason = models.TextField(blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(
                fields=["object_type", "object_id", "created_at"], name="audit_object_idx"
            ),
            models.Index(fields=["action", "created_at"], name="audit_action_idx"),
            models.Index(fields=["created_at"], name="audit_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id} by {self.actor_id}"
