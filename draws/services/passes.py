"""One pass of the draw job: close, schedule, freeze or cancel, refund, run."""

import logging
from datetime import datetime

from django.utils import timezone

from draws.services.cancelling import refund_cancelled_purchases
from draws.services.closing import close_due_houses, schedule_closed_houses
from draws.services.freezing import freeze_scheduled_draws
from draws.services.running import run_waiting_draws
from purchases.services.checkout import recover_stuck_checkouts
from reservations.services.lifecycle import expire_due_reservations

logger = logging.getLogger(__name__)


def run_due(*, now: datetime | None = None) -> dict[str, object]:
    """Safe to run twice at once: every step is a conditional transition under a row lock."""
    now = now or timezone.now()
    summary: dict[str, object] = {
        "closed": len(close_due_houses(now=now)),
        "scheduled": len(schedule_closed_houses()),
    }
    frozen = freeze_scheduled_draws(now=now)
    if frozen.get("waiting_past_bound"):
        # Purchases still in flight past the bound: settle them now rather than wait for
        # their own jobs (expiry every 30 s, stuck-checkout recovery every 5 min).
        expire_due_reservations(now=now)
        recover_stuck_checkouts()
    summary["freeze"] = frozen
    summary["refunds_opened"] = refund_cancelled_purchases()
    summary["run"] = run_waiting_draws(now=now)
    if any(value for value in summary.values()):
        logger.info("draw pass: %s", summary)
    return summary
