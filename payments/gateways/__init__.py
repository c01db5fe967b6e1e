"""Payment gateways, chosen by ``PAYMENT_GATEWAY`` (``sandbox`` or ``http``)."""

from functools import cache

from django.conf import settings

from payments.gateways.base import (
    ChargeResult,
    GatewayError,
    GatewayRejected,
    GatewayTimeout,
    GatewayUnavailable,
    PaymentGateway,
    RefundResult,
)

__all__ = [
    "ChargeResult",
    "GatewayError",
    "GatewayRejected",
    "GatewayTimeout",
    "GatewayUnavailable",
    "PaymentGateway",
    "RefundResult",
    "get_gateway",
]


GATEWAY_NAMES = ("sandbox", "http")


def get_gateway(name: str | None = None) -> PaymentGateway:
    """The gateway called ``name`` (a payment's stored ``gateway``), else the configured one.

    A payment is always charged, looked up and refunded where it was made, even
    after ``PAYMENT_GATEWAY`` changed.
    """
    if name is None:
        return _gateway_for(settings.PAYMENT_GATEWAY, settings.PAYMENT_SERVICE_URL)
    if name not in GATEWAY_NAMES:
        raise GatewayRejected(f"unknown payment gateway {name!r}")
    return _gateway_for(name, settings.PAYMENT_SERVICE_URL)


@cache
def _gateway_for(kind: str, service_url: str) -> PaymentGateway:
    # One instance per process: the http client's connection pool and circuit
    # breaker state must be shared by every call.
    if kind == "http":
        from payments.gateways.http import HttpPaymentGateway

        return HttpPaymentGateway.from_settings()
    from payments.gateways.sandbox import SandboxGateway

    return SandboxGateway()
