"""A small thread-safe circuit breaker for calls to the payment service."""

import threading
import time
from collections.abc import Callable

from payments.gateways.base import GatewayUnavailable


class CircuitBreaker:
    """Closed -> open after ``failure_threshold`` failures in a row -> half-open after
    ``reset_after`` seconds, when one trial call decides: success closes, failure re-opens.

    While open, calls fail at once with ``GatewayUnavailable`` instead of waiting
    for a timeout from a service that is known to be down.
    """

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(
        self,
        *,
        failure_threshold: int,
        reset_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at = 0.0
        self._state = self.CLOSED
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def before_call(self) -> None:
        with self._lock:
            if self._state == self.CLOSED:
                return
            if self._state == self.OPEN and self._clock() - self._opened_at >= self.reset_after:
                self._state = self.HALF_OPEN
            if self._state == self.HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return
            raise GatewayUnavailable("payment service circuit is open")

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._state = self.CLOSED
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._state == self.HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = self.OPEN
                self._opened_at = self._clock()
