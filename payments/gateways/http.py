"""Client for an external payment service at ``PAYMENT_SERVICE_URL``.

The service's contract (docs/payments.md): ``POST /v1/charges``,
``POST /v1/refunds`` and ``GET /v1/charges/by-idempotency-key/{key}``, each
request carrying ``Idempotency-Key``. Because every call is idempotent at the
service, timeouts, connection errors, 429 and 5xx answers are retried (a few
times, with backoff and jitter) with the same key. A circuit breaker
(``core.breaker``) stops calling a service that keeps failing. We use httpx for its precise
connect/read timeouts and connection pooling.
"""

import random
import time
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

from core.breaker import CircuitBreaker
from core.request_context import get_request_id
from payments.gateways.base import (
    ChargeResult,
    GatewayError,
    GatewayRejected,
    GatewayTimeout,
    GatewayUnavailable,
    PaymentGateway,
    RefundResult,
)

RETRY_BASE_DELAY = 0.1


class HttpPaymentGateway(PaymentGateway):
    name = "http"
    concurrent_charges = True  # httpx.Client and the breaker are thread-safe

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float,
        retries: int,
        breaker: CircuitBreaker,
    ) -> None:
        self.retries = retries
        self.breaker = breaker
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
        )

    @classmethod
    def from_settings(cls) -> "HttpPaymentGateway":
        return cls(
            settings.PAYMENT_SERVICE_URL,
            timeout=settings.PAYMENT_SERVICE_TIMEOUT,
            connect_timeout=settings.PAYMENT_SERVICE_CONNECT_TIMEOUT,
            retries=settings.PAYMENT_SERVICE_RETRIES,
            breaker=CircuitBreaker(
                failures_to_open=settings.PAYMENT_BREAKER_FAILURES,
                open_seconds=settings.PAYMENT_BREAKER_RESET_SECONDS,
                name="payment_gateway",
            ),
        )

    def close(self) -> None:
        self._client.close()

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        body = {"amount": str(amount), "currency": currency, "token": token}
        data = self._call("POST", "/v1/charges", idempotency_key, body)
        return _charge_result(data, amount=amount, currency=currency)

    def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        body = {"charge_id": charge_reference, "amount": str(amount), "currency": currency}
        data = self._call("POST", "/v1/refunds", idempotency_key, body)
        return RefundResult(
            status=(
                RefundResult.SUCCEEDED
                if data.get("status") == RefundResult.SUCCEEDED
                else RefundResult.FAILED
            ),
            reference=str(data.get("id", "")),
            failure_code=str(data.get("failure_code") or ""),
        )

    def get_status(self, *, idempotency_key: str) -> ChargeResult | None:
        path = f"/v1/charges/by-idempotency-key/{quote(idempotency_key, safe='')}"
        data = self._call("GET", path, idempotency_key, None, not_found_ok=True)
        return None if data is None else _charge_result(data)

    def _call(
        self,
        method: str,
        path: str,
        idempotency_key: str,
        body: dict[str, Any] | None,
        *,
        not_found_ok: bool = False,
    ) -> Any:
        headers = {"Idempotency-Key": idempotency_key}
        if request_id := get_request_id():
            headers["X-Request-ID"] = request_id
        last_error: GatewayError = GatewayUnavailable("payment service not called")
        timed_out = False
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(RETRY_BASE_DELAY * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
            if not self.breaker.allow():
                # Fail fast instead of waiting for a timeout from a service known to be down.
                raise GatewayUnavailable("payment service circuit is open")
            try:
                response = self._client.request(method, path, json=body, headers=headers)
            except httpx.TimeoutException as exc:
                timed_out = True
                last_error = GatewayTimeout(f"payment service timed out: {type(exc).__name__}")
            except httpx.TransportError as exc:
                last_error = GatewayUnavailable(
                    f"payment service unreachable: {type(exc).__name__}"
                )
            except BaseException:
                # Anything else (a body that cannot be decoded, a bug): a failure the
                # breaker must see, or a half-open trial would stay "running" for ever.
                self.breaker.record_failure()
                raise
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    last_error = GatewayUnavailable(
                        f"payment service answered {response.status_code}"
                    )
                else:
                    # The service is up and answered: whatever it said, the circuit is fine.
                    self.breaker.record_success()
                    if response.status_code == 404 and not_found_ok:
                        return None
                    if response.status_code >= 400:
                        raise GatewayRejected(f"payment service refused: {response.status_code}")
                    try:
                        return response.json()
                    except ValueError:
                        raise GatewayRejected(
                            "payment service sent a body that is not JSON"
                        ) from None
            self.breaker.record_failure()
        if timed_out and not isinstance(last_error, GatewayTimeout):
            # One attempt may have reached the service: the outcome is unknown, not "nothing".
            raise GatewayTimeout(f"outcome unknown after a timeout; then {last_error}")
        raise last_error


# Anything else ("processing", "pending", "requires_action", no status) is not an outcome.
_CHARGE_STATUSES = {ChargeResult.SUCCEEDED, ChargeResult.DECLINED}


def _charge_result(
    data: Any, *, amount: Decimal | None = None, currency: str | None = None
) -> ChargeResult:
    """The charge the service answered with, or ``GatewayTimeout`` when its outcome is unknown.

    Only an explicit ``succeeded`` or ``declined`` with an id is an outcome: a charge
    still processing must stay pending (retried, then asked by recovery), never be failed.
    """
    if not isinstance(data, dict):
        raise GatewayTimeout("payment service answered without a charge")
    status, reference = data.get("status"), data.get("id")
    if status not in _CHARGE_STATUSES or not reference:
        raise GatewayTimeout(f"charge outcome unknown: status={status!r}, id={reference!r}")
    try:
        answered_amount = Decimal(str(data["amount"])) if "amount" in data else amount
    except ArithmeticError:
        raise GatewayTimeout(f"charge answered an unreadable amount {data['amount']!r}") from None
    answered_currency = str(data["currency"]) if "currency" in data else currency
    if amount is not None and answered_amount != amount:
        raise GatewayTimeout(f"charge answered amount {answered_amount}, asked {amount}")
    if currency is not None and answered_currency != currency:
        raise GatewayTimeout(f"charge answered currency {answered_currency}, asked {currency}")
    return ChargeResult(
        status=status,
        reference=str(reference),
        amount=answered_amount,
        currency=answered_currency or "",
        decline_code=str(data.get("decline_code") or ""),
    )
