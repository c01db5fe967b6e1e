"""An in-process gateway for development and tests, with its own ledger in the database.

It behaves like a card network's test cards, by token:

| token | charge | refund |
| --- | --- | --- |
| ``tok_ok`` | succeeds | succeeds |
| ``tok_declined`` | declined ``card_declined`` | - |
| ``tok_insufficient_funds`` | declined ``insufficient_funds`` | - |
| ``tok_timeout`` | charges, then every call raises ``GatewayTimeout`` | succeeds |
| ``tok_unavailable`` | raises ``GatewayUnavailable``, charges nothing | - |
| ``tok_refund_fails`` | succeeds | fails the first ``SANDBOX_REFUND_FAILURES`` times |
| ``tok_refund_always_fails`` | succeeds | always fails |

Any other token is declined ``invalid_token``. The ledger rows are unique by
idempotency key, so a repeated call returns the first outcome.

Injected faults for soaks, whatever the token: ``SANDBOX_CHARGE_FAILURE_PERCENT``
of charge calls raise ``GatewayUnavailable`` and charge nothing;
``SANDBOX_CHARGE_TIMEOUT_PERCENT`` charge, then raise ``GatewayTimeout`` (both 0
unless set). A retry with the same key draws again.
"""

import random
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from payments.gateways.base import (
    ChargeResult,
    GatewayRejected,
    GatewayTimeout,
    GatewayUnavailable,
    PaymentGateway,
    RefundResult,
)
from payments.models import SandboxLedgerEntry as Entry

TOK_OK = "tok_ok"
TOK_DECLINED = "tok_declined"
TOK_INSUFFICIENT_FUNDS = "tok_insufficient_funds"
TOK_TIMEOUT = "tok_timeout"
TOK_UNAVAILABLE = "tok_unavailable"
TOK_REFUND_FAILS = "tok_refund_fails"
TOK_REFUND_ALWAYS_FAILS = "tok_refund_always_fails"

_DECLINES = {TOK_DECLINED: "card_declined", TOK_INSUFFICIENT_FUNDS: "insufficient_funds"}
_CHARGEABLE = {TOK_OK, TOK_TIMEOUT, TOK_REFUND_FAILS, TOK_REFUND_ALWAYS_FAILS}


class SandboxGateway(PaymentGateway):
    name = "sandbox"

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        roll = random.uniform(0, 100)
        failing = settings.SANDBOX_CHARGE_FAILURE_PERCENT
        if token == TOK_UNAVAILABLE or roll < failing:
            raise GatewayUnavailable("sandbox: gateway unavailable")
        entry = self._charge_entry(
            amount=amount, currency=currency, token=token, idempotency_key=idempotency_key
        )
        if roll < failing + settings.SANDBOX_CHARGE_TIMEOUT_PERCENT:
            raise GatewayTimeout("sandbox: timed out after charging (injected)")
        if entry.token == TOK_TIMEOUT:
            # The charge is in the ledger, but the caller never hears about it.
            raise GatewayTimeout("sandbox: timed out after charging (tok_timeout)")
        return _charge_result(entry)

    def _charge_entry(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> Entry:
        declined = _DECLINES.get(token, "" if token in _CHARGEABLE else "invalid_token")
        entry = Entry(
            kind=Entry.Kind.CHARGE,
            idempotency_key=idempotency_key,
            reference=f"sbx_ch_{uuid.uuid4().hex}",
            token=token,
            amount=amount,
            currency=currency,
            status=Entry.Status.DECLINED if declined else Entry.Status.SUCCEEDED,
            code=declined,
        )
        # Insert first, one statement in autocommit (a savepoint inside a transaction):
        # a repeated key is the rare case and finds the first charge.
        try:
            if connection.in_atomic_block:
                with transaction.atomic():
                    entry.save(force_insert=True)
            else:
                entry.save(force_insert=True)
            return entry
        except IntegrityError:  # the same key charged before or concurrently: that one counts
            existing = Entry.objects.get(idempotency_key=idempotency_key)
        if (
            existing.kind != Entry.Kind.CHARGE
            or existing.amount != amount
            or existing.currency != currency
        ):
            raise GatewayRejected("idempotency key reused with different charge parameters")
        return existing

    def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        with transaction.atomic():
            charge = (
                Entry.objects.select_for_update()
                .filter(reference=charge_reference, kind=Entry.Kind.CHARGE)
                .first()
            )
            if charge is None or charge.status != Entry.Status.SUCCEEDED:
                raise GatewayRejected("no succeeded charge with this reference")
            entry = Entry.objects.filter(idempotency_key=idempotency_key).first()
            if entry is not None and (
                entry.kind != Entry.Kind.REFUND or entry.charge_id != charge.pk
            ):
                raise GatewayRejected("idempotency key reused with different refund parameters")
            if entry is not None and entry.status == Entry.Status.SUCCEEDED:
                return _refund_result(entry)
            if entry is None:
                refunded = charge.refunds.filter(status=Entry.Status.SUCCEEDED).aggregate(
                    total=Sum("amount")
                )["total"] or Decimal(0)
                if refunded + amount > charge.amount:
                    raise GatewayRejected("refund exceeds the charge")
                entry = Entry.objects.create(
                    kind=Entry.Kind.REFUND,
                    idempotency_key=idempotency_key,
                    reference=f"sbx_re_{uuid.uuid4().hex}",
                    token=charge.token,
                    amount=amount,
                    currency=currency,
                    status=Entry.Status.FAILED,
                    charge=charge,
                )
            entry.attempts += 1
            fails = charge.token == TOK_REFUND_ALWAYS_FAILS or (
                charge.token == TOK_REFUND_FAILS
                and entry.attempts <= settings.SANDBOX_REFUND_FAILURES
            )
            entry.status = Entry.Status.FAILED if fails else Entry.Status.SUCCEEDED
            entry.code = "refund_rejected_by_issuer" if fails else ""
            entry.save(update_fields=["attempts", "status", "code", "updated_at"])
        return _refund_result(entry)

    def get_status(self, *, idempotency_key: str) -> ChargeResult | None:
        entry = Entry.objects.filter(
            idempotency_key=idempotency_key, kind=Entry.Kind.CHARGE
        ).first()
        return None if entry is None else _charge_result(entry)


def _charge_result(entry: Entry) -> ChargeResult:
    return ChargeResult(
        status=(
            ChargeResult.SUCCEEDED
            if entry.status == Entry.Status.SUCCEEDED
            else ChargeResult.DECLINED
        ),
        reference=entry.reference,
        amount=entry.amount,
        currency=entry.currency,
        decline_code=entry.code,
    )


def _refund_result(entry: Entry) -> RefundResult:
    return RefundResult(
        status=(
            RefundResult.SUCCEEDED
            if entry.status == Entry.Status.SUCCEEDED
            else RefundResult.FAILED
        ),
        reference=entry.reference,
        failure_code=entry.code,
    )
