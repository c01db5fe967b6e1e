"""The sandbox gateway behaves like a card network's test cards and is idempotent by key."""

from decimal import Decimal

import pytest
from django.test import override_settings

from payments.gateways import GatewayRejected, GatewayTimeout, GatewayUnavailable
from payments.gateways.sandbox import SandboxGateway
from payments.models import SandboxLedgerEntry

pytestmark = pytest.mark.django_db
AMOUNT = Decimal("25.00")


def charge(gateway: SandboxGateway, token: str, key: str = "key-1"):
    return gateway.charge(amount=AMOUNT, currency="EUR", token=token, idempotency_key=key)


def test_repeating_a_charge_with_the_same_key_charges_once() -> None:
    gateway = SandboxGateway()
    first = charge(gateway, "tok_ok")
    second = charge(gateway, "tok_ok")
    assert first.succeeded and second == first
    assert SandboxLedgerEntry.objects.filter(kind="charge").count() == 1


def test_declining_tokens_give_their_decline_codes() -> None:
    gateway = SandboxGateway()
    declined = charge(gateway, "tok_declined", "a")
    poor = charge(gateway, "tok_insufficient_funds", "b")
    unknown = charge(gateway, "tok_made_up", "c")
    assert (declined.status, declined.decline_code) == ("declined", "card_declined")
    assert (poor.status, poor.decline_code) == ("declined", "insufficient_funds")
    assert (unknown.status, unknown.decline_code) == ("declined", "invalid_token")


def test_timeout_token_charges_then_times_out_and_get_status_tells_the_truth() -> None:
    gateway = SandboxGateway()
    with pytest.raises(GatewayTimeout):
        charge(gateway, "tok_timeout")
    with pytest.raises(GatewayTimeout):
        charge(gateway, "tok_timeout")  # a retry sees the same silence, and charges nothing more
    assert SandboxLedgerEntry.objects.filter(kind="charge", status="succeeded").count() == 1
    status = gateway.get_status(idempotency_key="key-1")
    assert status is not None and status.succeeded
    assert gateway.get_status(idempotency_key="never-used") is None


def test_unavailable_token_charges_nothing() -> None:
    gateway = SandboxGateway()
    with pytest.raises(GatewayUnavailable):
        charge(gateway, "tok_unavailable")
    assert gateway.get_status(idempotency_key="key-1") is None


def test_same_key_with_another_amount_is_rejected() -> None:
    gateway = SandboxGateway()
    charge(gateway, "tok_ok")
    with pytest.raises(GatewayRejected):
        gateway.charge(
            amount=Decimal("1.00"), currency="EUR", token="tok_ok", idempotency_key="key-1"
        )


@override_settings(SANDBOX_REFUND_FAILURES=2)
def test_refund_token_fails_twice_then_succeeds_once() -> None:
    gateway = SandboxGateway()
    paid = charge(gateway, "tok_refund_fails")
    outcomes = [
        gateway.refund(
            charge_reference=paid.reference, amount=AMOUNT, currency="EUR", idempotency_key="r-1"
        ).status
        for _ in range(4)
    ]
    assert outcomes == ["failed", "failed", "succeeded", "succeeded"]
    assert SandboxLedgerEntry.objects.filter(kind="refund", status="succeeded").count() == 1


def test_always_failing_refund_token_never_refunds() -> None:
    gateway = SandboxGateway()
    paid = charge(gateway, "tok_refund_always_fails")
    for _ in range(5):
        result = gateway.refund(
            charge_reference=paid.reference, amount=AMOUNT, currency="EUR", idempotency_key="r-1"
        )
        assert result.status == "failed"


def test_refunds_can_never_exceed_the_charge() -> None:
    gateway = SandboxGateway()
    paid = charge(gateway, "tok_ok")
    gateway.refund(
        charge_reference=paid.reference,
        amount=Decimal("20.00"),
        currency="EUR",
        idempotency_key="r-1",
    )
    with pytest.raises(GatewayRejected):
        gateway.refund(
            charge_reference=paid.reference,
            amount=Decimal("5.01"),
            currency="EUR",
            idempotency_key="r-2",
        )


def test_injected_charge_failures_charge_nothing(settings) -> None:
    settings.SANDBOX_CHARGE_FAILURE_PERCENT = 100
    with pytest.raises(GatewayUnavailable):
        SandboxGateway().charge(
            amount=Decimal("10.00"), currency="EUR", token="tok_ok", idempotency_key="k-fail"
        )
    assert not SandboxLedgerEntry.objects.exists()


def test_injected_charge_timeouts_charge_once_and_a_retry_hears_the_outcome(settings) -> None:
    settings.SANDBOX_CHARGE_TIMEOUT_PERCENT = 100
    charge = {"amount": Decimal("10.00"), "currency": "EUR", "token": "tok_ok"}
    with pytest.raises(GatewayTimeout):
        SandboxGateway().charge(**charge, idempotency_key="k-slow")
    settings.SANDBOX_CHARGE_TIMEOUT_PERCENT = 0
    result = SandboxGateway().charge(**charge, idempotency_key="k-slow")
    assert result.succeeded
    assert SandboxLedgerEntry.objects.filter(kind="charge").count() == 1
