"""The payment gateway interface every implementation follows.

Every call carries an idempotency key: repeating a call with the same key
returns the first call's outcome and never charges or refunds twice. A call
that raises ``GatewayError`` may or may not have happened at the gateway
(a timeout after the charge); callers repeat it with the same key, or ask
``get_status``, to find out.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal


class GatewayError(Exception):
    """Transient: the outcome is unknown; repeat with the same idempotency key."""


class GatewayTimeout(GatewayError):
    """No answer in time; the operation may have happened."""


class GatewayUnavailable(GatewayError):
    """The gateway could not be reached (or the circuit is open); nothing happened."""


class GatewayRejected(Exception):
    """Permanent: the gateway refused the request itself (bad reference, reused key)."""


@dataclass(frozen=True)
class ChargeResult:
    status: str  # "succeeded" | "declined"
    reference: str
    amount: Decimal | None  # None: the gateway did not say
    currency: str  # "": the gateway did not say
    decline_code: str = ""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"

    @property
    def succeeded(self) -> bool:
        return self.status == self.SUCCEEDED


@dataclass(frozen=True)
class RefundResult:
    status: str  # "succeeded" | "failed"
    reference: str
    failure_code: str = ""

    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def succeeded(self) -> bool:
        return self.status == self.SUCCEEDED


class PaymentGateway(ABC):
    name: str
    # Safe and worth calling from several threads at once (network wait, no database).
    concurrent_charges: bool = False

    @abstractmethod
    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        """Charge the card behind ``token``; a decline is a result, not an error."""

    @abstractmethod
    def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        """Refund ``amount`` of a succeeded charge; a refused refund is a ``failed`` result."""

    @abstractmethod
    def get_status(self, *, idempotency_key: str) -> ChargeResult | None:
        """The charge made with this key, or None when the gateway never made one."""
