"""Every periodic task, declared here and written to django-celery-beat's tables.

``manage.py sync_beat_schedule`` (run after every ``migrate``) creates or
updates these rows and disables rows for tasks no longer declared, so
``make stack`` runs the schedule with no manual set-up.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every_seconds: int


BEAT_SCHEDULE: tuple[PeriodicJob, ...] = (
    PeriodicJob("beat heartbeat", "core.beat_heartbeat", 30),
    PeriodicJob("purge expired idempotency keys", "core.purge_expired_idempotency_keys", 3600),
    PeriodicJob("relay outbox", "core.relay_outbox", 10),
    PeriodicJob("retry refunds", "refunds.retry_due", 300),
    PeriodicJob("requeue stranded checkouts", "checkout.requeue_stranded", 30),
    PeriodicJob("recover stuck checkouts", "checkout.recover_stuck", 300),
    PeriodicJob("expire reservations", "reservations.expire_reservations", 30),
    PeriodicJob("sync inventory", "reservations.sync_inventory", 300),
    PeriodicJob("close lotteries and run draws", "draws.run_due", 60),
    PeriodicJob("notify watchers of houses closing", "notifications.raise_closing_soon", 300),
    PeriodicJob("send stalled notifications", "notifications.send_stalled", 300),
)
