"""The http gateway against a real local HTTP server: timeouts, retries, circuit breaker."""

import socket
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest

from core.breaker import CircuitBreaker
from payments.gateways import GatewayTimeout, GatewayUnavailable
from payments.gateways.http import HttpPaymentGateway
from tests.payments.fake_payment_service import FakePaymentService, free_port

AMOUNT = Decimal("12.50")


@pytest.fixture
def service() -> Iterator[FakePaymentService]:
    fake = FakePaymentService().start()
    yield fake
    fake.stop()


def gateway_for(url: str, *, timeout: float = 1.0, retries: int = 2, threshold: int = 5):
    return HttpPaymentGateway(
        url,
        timeout=timeout,
        connect_timeout=0.5,
        retries=retries,
        breaker=CircuitBreaker(failures_to_open=threshold, open_seconds=0.5),
    )


def charge(gateway: HttpPaymentGateway, key: str = "res-1", token: str = "tok_ok"):
    return gateway.charge(amount=AMOUNT, currency="EUR", token=token, idempotency_key=key)


def test_repeating_a_charge_with_the_same_key_charges_once(service: FakePaymentService) -> None:
    gateway = gateway_for(service.url)
    first, second = charge(gateway), charge(gateway)
    assert first.succeeded and first.reference == second.reference
    assert first.amount == AMOUNT
    assert len(service.charges) == 1


def test_a_decline_is_a_result_not_an_error(service: FakePaymentService) -> None:
    result = charge(gateway_for(service.url), token="tok_declined")
    assert (result.status, result.decline_code) == ("declined", "card_declined")


def test_5xx_answers_are_retried_with_the_same_key(service: FakePaymentService) -> None:
    service.fail_next = 2
    result = charge(gateway_for(service.url, retries=2))
    assert result.succeeded
    assert service.requests == 3
    assert len(service.charges) == 1


def test_a_slow_service_times_out_and_get_status_finds_the_charge_later(
    service: FakePaymentService,
) -> None:
    service.delay = 1.0
    gateway = gateway_for(service.url, timeout=0.2, retries=0)
    started = time.monotonic()
    with pytest.raises(GatewayTimeout):
        charge(gateway)
    assert time.monotonic() - started < 0.9  # gave up at the timeout, not when the server answered
    time.sleep(1.0)  # the server finishes the charge we stopped waiting for
    service.delay = 0.0
    status = gateway.get_status(idempotency_key="res-1")
    assert status is not None and status.succeeded
    assert gateway.get_status(idempotency_key="never") is None


def test_a_closed_port_is_unavailable_fast() -> None:
    port = free_port()  # nothing listens there
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    gateway = gateway_for(f"http://127.0.0.1:{port}", retries=1)
    started = time.monotonic()
    with pytest.raises(GatewayUnavailable):
        charge(gateway)
    assert time.monotonic() - started < 1.0


def test_the_circuit_opens_after_repeated_failures_and_stops_calling(
    service: FakePaymentService,
) -> None:
    service.fail_next = 100
    gateway = gateway_for(service.url, retries=0, threshold=3)
    for _ in range(3):
        with pytest.raises(GatewayUnavailable):
            charge(gateway)
    assert gateway.breaker.state == CircuitBreaker.OPEN
    calls_when_opened = service.requests
    with pytest.raises(GatewayUnavailable, match="circuit is open"):
        charge(gateway)
    assert service.requests == calls_when_opened  # failed fast, no request sent


def test_a_half_open_circuit_closes_after_one_good_trial(service: FakePaymentService) -> None:
    service.fail_next = 3
    gateway = gateway_for(service.url, retries=0, threshold=3)
    for _ in range(3):
        with pytest.raises(GatewayUnavailable):
            charge(gateway)
    time.sleep(0.6)  # open_seconds=0.5: the next call is the trial
    assert charge(gateway).succeeded
    assert gateway.breaker.state == CircuitBreaker.CLOSED


def gateway_answering(answer: Callable[[httpx.Request], httpx.Response]) -> HttpPaymentGateway:
    """The http gateway talking to an in-memory transport (malformed or odd answers)."""
    gateway = gateway_for("http://payments.invalid", retries=0)
    gateway._client = httpx.Client(
        base_url="http://payments.invalid", transport=httpx.MockTransport(answer)
    )
    return gateway


def answer_json(body: object) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, json=body)


CHARGE = {"id": "ch_1", "amount": "12.50", "currency": "EUR"}


@pytest.mark.parametrize(
    "body",
    [
        {**CHARGE, "status": "processing"},
        {**CHARGE, "status": "pending"},
        {**CHARGE, "status": "requires_action"},
        {},
        {"id": "ch_1"},
        {"status": "succeeded", "amount": "12.50", "currency": "EUR"},
        [],
    ],
    ids=["processing", "pending", "requires_action", "empty", "no_status", "no_id", "list"],
)
def test_a_charge_without_a_final_status_is_an_unknown_outcome_not_a_decline(
    body: object,
) -> None:
    gateway = gateway_answering(answer_json(body))
    with pytest.raises(GatewayTimeout):
        charge(gateway)
    with pytest.raises(GatewayTimeout):
        gateway.get_status(idempotency_key="res-1")


@pytest.mark.parametrize(
    "changed", [{"amount": "1.00"}, {"currency": "USD"}, {"amount": "not a number"}]
)
def test_a_charge_for_another_amount_or_currency_is_an_unknown_outcome(
    changed: dict[str, str],
) -> None:
    gateway = gateway_answering(answer_json({**CHARGE, "status": "succeeded", **changed}))
    with pytest.raises(GatewayTimeout):
        charge(gateway)


def test_explicit_succeeded_and_declined_answers_are_outcomes() -> None:
    succeeded = charge(gateway_answering(answer_json({**CHARGE, "status": "succeeded"})))
    assert (succeeded.status, succeeded.reference, succeeded.amount) == (
        "succeeded",
        "ch_1",
        AMOUNT,
    )
    declined = charge(
        gateway_answering(
            answer_json({"id": "ch_2", "status": "declined", "decline_code": "card_declined"})
        )
    )
    assert (declined.status, declined.decline_code) == ("declined", "card_declined")


def test_an_unexpected_error_in_the_half_open_trial_does_not_jam_the_circuit() -> None:
    answers = iter(
        [
            httpx.Response(503, json={"error": "try later"}),
            httpx.DecodingError("bad gzip body"),
            httpx.Response(200, json={**CHARGE, "status": "succeeded"}),
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        next_answer = next(answers)
        if isinstance(next_answer, Exception):
            raise next_answer
        return next_answer

    gateway = gateway_answering(answer)
    gateway.breaker.failures_to_open = 1
    with pytest.raises(GatewayUnavailable):
        charge(gateway)
    assert gateway.breaker.state == CircuitBreaker.OPEN
    time.sleep(0.6)  # open_seconds=0.5: the next call is the trial
    with pytest.raises(httpx.DecodingError):
        charge(gateway)
    assert gateway.breaker.state == CircuitBreaker.OPEN  # the failed trial re-opened it
    time.sleep(0.6)
    assert charge(gateway).succeeded
    assert gateway.breaker.state == CircuitBreaker.CLOSED
