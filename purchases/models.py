"""Tickets: what a completed purchase issues.

The table was ``lottery_ticket`` until the model moved here (issue 8); the
migrations moved the model in Django's state only and renamed the table, so
every ticket row stayed where it was.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class TicketStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REFUNDED = "refunded", "Refunded"


class Ticket(models.Model):
    """One numbered ticket of a house, issued by a completed purchase.

    Numbers come from the locked house row's ``next_ticket_number`` as one
    contiguous block per purchase (invariant 2), never ``MAX()+1``; a refunded
    ticket keeps its number, which is never reused.
    """

    Status = TicketStatus

    house = models.ForeignKey("lottery.House", on_delete=models.PROTECT, related_name="tickets")
    ticket_number = models.BigIntegerField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tickets"
    )
    reservation = models.ForeignKey(
        "reservations.Reservation", on_delete=models.PROTECT, related_name="tickets"
    )
    payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="tickets"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    issued_at = models.DateTimeField()
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["house_id", "ticket_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["house", "ticket_number"], name="ticket_number_unique_per_house"
            ),
            models.CheckConstraint(
                condition=Q(ticket_number__gte=1), name="ticket_number_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=TicketStatus.values), name="ticket_status_known"
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-issued_at"], name="ticket_owner_recent_idx"),
            models.Index(fields=["reservation"], name="ticket_reservation_idx"),
            models.Index(
                fields=["house"], condition=Q(status="active"), name="ticket_house_active_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"house {self.house_id} #{self.ticket_number} ({self.status})"
