"""One thread-safe circuit breaker for every dependency we call over the network.

Closed -> open after ``failures_to_open`` failures in a row -> half-open once
``open_seconds`` have passed, when exactly one trial call is let through: its
success closes the circuit, its failure opens it again for another pause.
Used by the Redis inventory gate (``reservations.inventory``) and the http
payment gateway (``payments.gateways.http``); each caller decides what a
refused call means (fall back to the database, fail fast).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core import metrics


class CircuitBreaker:
    """Closed -> open after consecutive failures -> half-open after a pause (one trial)."""

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(
        self,
        *,
        failures_to_open: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        self.name = name  # when given, the open state is the gauge circuit_breaker_open
        self.failures_to_open = failures_to_open
        self.open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._warned_for: float | None = None  # the opening already reported
        self._report_open(False)

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return self.CLOSED
            if self._clock() - self._opened_at >= self.open_seconds:
                return self.HALF_OPEN
            return self.OPEN

    def allow(self) -> bool:
        """May a call go out now? False while open, and in half-open once the trial is out."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at < self.open_seconds or self._trial_running:
                return False
            self._trial_running = True  # half-open: exactly one call probes the dependency
            return True

    def first_refusal_since_opening(self) -> bool:
        """True once per open period, so a refused call can be logged without a flood."""
        with self._lock:
            if self._opened_at is None or self._warned_for == self._opened_at:
                return False
            self._warned_for = self._opened_at
            return True

    def record_success(self) -> None:
        with self._lock:
            was_open = self._opened_at is not None
            self._failures = 0
            self._opened_at = None
            self._trial_running = False
        if was_open:
            self._report_open(False)

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            opens = self._opened_at is None and self._failures >= self.failures_to_open
            if self._opened_at is not None or self._failures >= self.failures_to_open:
                self._opened_at = self._clock()
        if opens:
            self._report_open(True)

    def _report_open(self, is_open: bool) -> None:
        # Only on a change of state: the closed path (every successful call) stays free.
        if self.name:
            metrics.set_gauge("circuit_breaker_open", 1 if is_open else 0, dependency=self.name)

    def reset(self) -> None:
        """Closed, as new (tests; an operator who knows the dependency is back)."""
        self.record_success()
