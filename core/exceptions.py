"""Domain errors. Each carries its stable ``code`` and HTTP status.

Services raise these; ``core.errors.problem_exception_handler`` renders them as
RFC 9457 problem JSON. Nobody formats an error body by hand.
"""


class DomainError(Exception):
    status_code: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    default_detail: str = "The request could not be processed."

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        self.detail = detail or self.default_detail
        self.headers = headers or {}
        super().__init__(self.detail)


class MalformedRequest(DomainError):
    status_code, code, title = 400, "malformed_request", "Malformed request"
    default_detail = "The request body is not valid JSON."


class NotAuthenticated(DomainError):
    status_code, code, title = 401, "not_authenticated", "Not authenticated"
    default_detail = "Authentication credentials were missing or invalid."


class PermissionDenied(DomainError):
    status_code, code, title = 403, "permission_denied", "Permission denied"
    default_detail = "You do not have permission to perform this action."


class AccountNotVerified(PermissionDenied):
    code, title = "account_not_verified", "Account not verified"
    default_detail = "Your account must be verified before you can take part."


class AccountSuspended(PermissionDenied):
    code, title = "account_suspended", "Account suspended"
    default_detail = "Your account is suspended or banned."


class NotFound(DomainError):
    status_code, code, title = 404, "not_found", "Not found"
    default_detail = "The requested resource does not exist."


class Conflict(DomainError):
    status_code, code, title = 409, "conflict", "Conflict"


class SoldOut(Conflict):
    code, title = "sold_out", "Sold out"
    default_detail = "Not enough tickets are left for this house."


class ParticipantCapReached(Conflict):
    code, title = "participant_cap_reached", "Participant cap reached"
    default_detail = "This house has reached its maximum number of participants."


class SalesClosed(Conflict):
    code, title = "sales_closed", "Sales closed"
    default_detail = "Tickets for this house are not on sale now."


class InvalidState(Conflict):
    code, title = "invalid_state", "Invalid state"
    default_detail = "The object is not in a state that allows this action."


class IdempotencyKeyInProgress(Conflict):
    code, title = "idempotency_key_in_progress", "Request in progress"
    default_detail = "A request with this Idempotency-Key is still being processed."


class PayloadTooLarge(DomainError):
    status_code, code, title = 413, "payload_too_large", "Payload too large"
    default_detail = "The request body is larger than the server accepts."


class Unprocessable(DomainError):
    status_code, code, title = 422, "validation_error", "Validation error"
    default_detail = "The request is not valid."


class ValidationFailed(Unprocessable):
    """Field-level validation errors, rendered as ``errors[]``."""

    def __init__(self, errors: list[dict[str, str]], detail: str | None = None):
        self.errors = errors
        super().__init__(detail or "One or more fields are invalid.")


class PurchaseLimitExceeded(Unprocessable):
    code, title = "purchase_limit_exceeded", "Purchase limit exceeded"
    default_detail = "This quantity is outside what you may buy for this house."


class PromotionInvalid(Unprocessable):
    code, title = "promotion_invalid", "Promotion invalid"
    default_detail = "This promotion code cannot be used for this purchase."


class IdempotencyKeyReused(Unprocessable):
    code, title = "idempotency_key_reused", "Idempotency-Key reused"
    default_detail = "This Idempotency-Key was already used with a different request."


class RateLimited(DomainError):
    status_code, code, title = 429, "rate_limited", "Too many requests"
    default_detail = "Too many requests; retry later."


class ServiceUnavailable(DomainError):
    status_code, code, title = 503, "service_unavailable", "Service unavailable"
    default_detail = "A service needed to answer safely is unavailable; retry later."

    def __init__(self, detail: str | None = None, *, retry_after: int = 5):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
