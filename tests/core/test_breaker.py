"""The one circuit breaker (core.breaker), on a clock the tests move by hand."""

import threading

from core.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker_on(clock: Clock, *, failures_to_open: int = 3) -> CircuitBreaker:
    return CircuitBreaker(failures_to_open=failures_to_open, open_seconds=5.0, clock=clock)


def test_opens_after_the_configured_failures_in_a_row() -> None:
    breaker = breaker_on(Clock())
    for _ in range(2):
        breaker.record_failure()
        assert breaker.state == CircuitBreaker.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN
    assert not breaker.allow()


def test_a_success_in_between_starts_the_count_again() -> None:
    breaker = breaker_on(Clock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.CLOSED


def test_after_the_pause_exactly_one_trial_goes_out() -> None:
    clock = Clock()
    breaker = breaker_on(clock, failures_to_open=1)
    breaker.record_failure()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state == CircuitBreaker.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # the trial is out: everyone else still waits


def test_a_good_trial_closes_the_circuit() -> None:
    clock = Clock()
    breaker = breaker_on(clock, failures_to_open=1)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CircuitBreaker.CLOSED
    assert breaker.allow() and breaker.allow()


def test_a_failed_trial_opens_it_for_another_full_pause() -> None:
    clock = Clock()
    breaker = breaker_on(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.record_failure()  # one failure is enough in half-open
    assert breaker.state == CircuitBreaker.OPEN
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_first_refusal_is_reported_once_per_open_period() -> None:
    clock = Clock()
    breaker = breaker_on(clock, failures_to_open=1)
    assert not breaker.first_refusal_since_opening()  # closed: nothing to report
    breaker.record_failure()
    assert breaker.first_refusal_since_opening()
    assert not breaker.first_refusal_since_opening()
    clock.now += 5
    breaker.allow()
    breaker.record_failure()  # the trial failed: a new open period
    assert breaker.first_refusal_since_opening()
    assert not breaker.first_refusal_since_opening()


def test_reset_closes_it() -> None:
    breaker = breaker_on(Clock(), failures_to_open=1)
    breaker.record_failure()
    breaker.reset()
    assert breaker.state == CircuitBreaker.CLOSED and breaker.allow()


def test_racing_threads_in_half_open_let_exactly_one_trial_through() -> None:
    clock = Clock()
    breaker = breaker_on(clock, failures_to_open=1)
    breaker.record_failure()
    clock.now += 5
    workers = 32
    barrier = threading.Barrier(workers)
    allowed: list[bool] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        answer = breaker.allow()
        with lock:
            allowed.append(answer)

    threads = [threading.Thread(target=call) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 1 and len(allowed) == workers


def test_racing_failures_open_it_once_the_threshold_is_reached() -> None:
    breaker = breaker_on(Clock(), failures_to_open=50)
    threads = [threading.Thread(target=breaker.record_failure) for _ in range(49)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.state == CircuitBreaker.CLOSED  # no lost or doubled count
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN
