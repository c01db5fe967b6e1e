# Ticket moved here from lottery (issue 8): the model enters purchases' state on
# the existing table ``lottery_ticket`` (no database operation); 0002 renames it.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("lottery", "0006_move_ticket_to_purchases"),
        ("payments", "0001_initial"),
        ("reservations", "0004_processing_sweep_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Ticket",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("ticket_number", models.BigIntegerField()),
                        (
                            "status",
                            models.CharField(
                                choices=[("active", "Active"), ("refunded", "Refunded")],
                                default="active",
                                max_length=16,
                            ),
                        ),
                        ("issued_at", models.DateTimeField()),
                        ("refunded_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "house",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="tickets",
                                to="lottery.house",
                            ),
                        ),
                        (
                            "owner",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="tickets",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "payment",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="tickets",
                                to="payments.payment",
                            ),
                        ),
                        (
                            "reservation",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="tickets",
                                to="reservations.reservation",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "lottery_ticket",
                        "ordering": ["house_id", "ticket_number"],
                        "indexes": [
                            models.Index(
                                fields=["owner", "-issued_at"], name="ticket_owner_recent_idx"
                            ),
                            models.Index(fields=["reservation"], name="ticket_reservation_idx"),
                            models.Index(
                                condition=models.Q(("status", "active")),
                                fields=["house"],
                                name="ticket_house_active_idx",
                            ),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("house", "ticket_number"),
                                name="ticket_number_unique_per_house",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("ticket_number__gte", 1)),
                                name="ticket_number_positive",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("status__in", ["active", "refunded"])),
                                name="ticket_status_known",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
