"""Draws: the frozen ticket list of a closed house and the record of its draw.

Everything a draw's result depends on is stored before the result is computed
(DRAWS.md): the seed, the frozen leaves and their root, the beacon round. So a
rerun after a crash computes the same winner, and the published record lets
anyone recompute it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class DrawStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"  # the house closed; waiting for in-flight purchases
    WAITING_ENTROPY = "waiting_entropy", "Waiting for entropy"  # frozen, seed revealed
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"  # retried by the next pass
    SUPERSEDED = "superseded", "Superseded"  # history: its winner was disqualified


class EntropySource(models.TextChoices):
    DRAND = "drand", "drand beacon"
    MANUAL = "manual", "Manual (staff)"


class FrozenTicketList(models.Model):
    """The leaves of a house's draw, frozen once at close: ``tickets_count`` x 24 bytes.

    One binary column, so the list served later is byte for byte the one the
    root covers, even after a ticket is refunded (a million tickets is 24 MB).
    """

    house = models.OneToOneField(
        "lottery.House", on_delete=models.PROTECT, related_name="frozen_ticket_list"
    )
    tickets_root = models.CharField(max_length=64)
    tickets_count = models.IntegerField()
    leaves = models.BinaryField()
    # draws.leaves.SubtreeIndex: what a proof needs besides one subtree's leaves.
    # Written at freeze; migration 0004 filled it in for lists frozen before.
    subtree_index = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(tickets_count__gt=0), name="frozen_list_not_empty"),
            models.CheckConstraint(
                condition=Q(tickets_root__regex=r"^[0-9a-f]{64}$"),
                name="frozen_list_root_is_sha256_hex",
            ),
        ]

    def __str__(self) -> str:
        return f"tickets of house {self.house_id} ({self.tickets_count})"


class Draw(models.Model):
    """One house's draw, from close to result; a redraw adds a row and supersedes this one."""

    Status = DrawStatus
    EntropySource = EntropySource
    # A frozen draw whose result is still to come (the runner and staff pick these up).
    AWAITING_RESULT = (Status.WAITING_ENTROPY, Status.RUNNING, Status.FAILED)

    house = models.ForeignKey("lottery.House", on_delete=models.PROTECT, related_name="draws")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Set when the draw cannot go on without staff (no commitment): the runner leaves it.
    needs_attention_at = models.DateTimeField(null=True, blank=True)
    conducted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    ticket_list = models.ForeignKey(
        FrozenTicketList, on_delete=models.PROTECT, null=True, blank=True, related_name="draws"
    )
    # The record of DRAWS.md section 5, written at close (inputs) and at completion (result).
    algorithm_version = models.PositiveSmallIntegerField(null=True, blank=True)
    commitment = models.CharField(max_length=64, blank=True)
    seed = models.CharField(max_length=64, blank=True)
    tickets_root = models.CharField(max_length=64, blank=True)
    tickets_count = models.IntegerField(null=True, blank=True)
    alternates_count = models.IntegerField(null=True, blank=True)
    beacon_chain = models.CharField(max_length=64, blank=True)
    beacon_round = models.BigIntegerField(null=True, blank=True)
    beacon_randomness = models.CharField(max_length=64, blank=True)
    beacon_signature = models.CharField(max_length=192, blank=True)
    entropy_source = models.CharField(max_length=8, choices=EntropySource.choices, blank=True)
    entropy_note = models.TextField(blank=True)  # where staff took manual entropy from
    winning_index = models.IntegerField(null=True, blank=True)
    winning_ticket_number = models.BigIntegerField(null=True, blank=True)
    alternates = models.JSONField(default=list, blank=True)
    # Who gets the house: the winning ticket unless staff disqualified it (then an alternate).
    awarded_ticket_number = models.BigIntegerField(null=True, blank=True)
    # [{"ticket_number", "reason", "at", "by"}] of disqualified tickets, oldest first.
    disqualified = models.JSONField(default=list, blank=True)
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Staff console actions (admin checks them; console's migration grants them).
        permissions = [
            ("conduct_draw", "Can conduct a draw (beacon signature or manual entropy)"),
            ("disqualify_winner", "Can disqualify a draw's winner"),
        ]
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DrawStatus.values), name="draw_status_known"
            ),
            models.CheckConstraint(
                condition=Q(entropy_source="") | Q(entropy_source__in=EntropySource.values),
                name="draw_entropy_source_known",
            ),
            models.CheckConstraint(condition=Q(attempts__gte=0), name="draw_attempts_non_negative"),
            # Invariant 5: one live draw per house, one completed draw per house.
            models.UniqueConstraint(
                fields=["house"],
                condition=~Q(status=DrawStatus.SUPERSEDED),
                name="draw_one_live_per_house",
            ),
            models.UniqueConstraint(
                fields=["house"],
                condition=Q(status=DrawStatus.COMPLETED),
                name="draw_one_completed_per_house",
            ),
            # A completed draw carries its whole record.
            models.CheckConstraint(
                condition=~Q(status=DrawStatus.COMPLETED)
                | Q(
                    winning_ticket_number__isnull=False,
                    awarded_ticket_number__isnull=False,
                    completed_at__isnull=False,
                    tickets_count__isnull=False,
                    beacon_round__isnull=False,
                )
                & ~Q(beacon_randomness="")
                & ~Q(seed=""),
                name="draw_completed_has_result",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="draw_status_idx"),
        ]

    def __str__(self) -> str:
        return f"draw {self.pk} of house {self.house_id} ({self.status})"

    @property
    def is_frozen(self) -> bool:
        return self.ticket_list_id is not None
