"""Reserving tickets: the hot path of the whole system.

Order of the rules (each refusal leaves nothing behind): eligibility (active,
verified player; fails closed), house exists and not deleted, ``active``,
inside the sales window, quantity within the per-purchase bounds and the
player's remaining per-user allowance, promotion valid and under its limits,
then the conditional counter UPDATE (invariant 1), the participant upsert
(invariant 3), the promotion counter, the reservation row and the
idempotency record.

On PostgreSQL all of that is ONE SQL statement (a CTE, ``reservations/sql/reserve.sql``,
run as a prepared statement through ``core.prepared``). Why: a reservation
through the ORM costs ~6 round trips and 4-6 ms of Python, which caps one
house near 250-300 reservations/s on two cores; one statement reaches 500+/s.
The statement is safe on its own: every write is conditional and re-checked
on the latest row version (READ COMMITTED re-evaluates UPDATE ... WHERE), and
when one conditional write loses a race after others succeeded, the final
SELECT calls ``reservations_abort()`` which raises and rolls the whole
statement back; the service then re-runs it on a fresh snapshot, where the
rules give the right answer. Redis is asked first (``reservations.inventory``)
so a sold-out house is answered without PostgreSQL. Other databases take the
ORM version of the same rules (``reserve_orm``). What a repeated
``Idempotency-Key`` gets is decided by ``core.idempotency`` for both.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone

from core import exceptions as domain
from core import idempotency, metrics
from core.idempotency import Outcome, StoredKey
from core.prepared import PreparedStatement, sqlstate
from lottery.on_sale import on_sale_sql
from reservations import inventory
from reservations.inventory import Gate
from reservations.services.inventory_sync import rebuild_after_miss
from reservations.services.reserve_orm import api_datetime, reserve_with_orm

logger = logging.getLogger(__name__)

ABORT_SQLSTATE = "RS001"
MAX_ATTEMPTS = 4

# The reservation JSON (201) or a replayed stored response, ready for HTTP.
ReserveOutcome = Outcome

# Refusal codes the statement can return, and the error each one raises.
REFUSALS: dict[str, type[domain.DomainError]] = {
    "account_not_verified": domain.AccountNotVerified,
    "account_suspended": domain.AccountSuspended,
    "not_found": domain.NotFound,
    "sales_closed": domain.SalesClosed,
    "purchase_limit_exceeded": domain.PurchaseLimitExceeded,
    "promotion_invalid": domain.PromotionInvalid,
    "sold_out": domain.SoldOut,
    "participant_cap_reached": domain.ParticipantCapReached,
}

# PREPAREd once per database connection (connections are persistent), then EXECUTEd
# with 11 values: PostgreSQL plans it once, the driver never re-parses 7 kB of SQL.
_STATEMENT = PreparedStatement(
    name="reservations_reserve_v1",
    sql=(Path(__file__).resolve().parent.parent / "sql" / "reserve.sql")
    .read_text()
    # "On sale" has one definition (lottery.on_sale); the file names where it applies.
    .replace("{house_on_sale:f}", on_sale_sql(house="f", now="%(now)s"))
    .replace("{house_on_sale:h}", on_sale_sql(house="h", now="%(now)s")),
    parameters=(
        ("user_id", "bigint"),
        ("house_id", "bigint"),
        ("quantity", "integer"),
        ("promo_code", "text"),
        ("now", "timestamptz"),
        ("expires_at", "timestamptz"),
        ("expires_at_text", "text"),
        ("reservation_id", "uuid"),
        ("idem_key", "text"),
        ("fingerprint", "text"),
        ("idem_expires_at", "timestamptz"),
    ),
)


def reserve_tickets(
    *,
    player: AbstractBaseUser,
    house_id: int,
    quantity: int,
    promo_code: str | None = None,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> ReserveOutcome:
    """Reserve ``quantity`` tickets of a house for ``player``; raises a domain error on refusal.

    With ``idempotency_key`` the outcome is stored under the key in the same
    statement, and a repeat with the same ``fingerprint`` replays it.

    Call it in autocommit (the API does): Redis is decremented before the
    statement, and if a caller's outer transaction rolled back afterwards nothing
    would give those tickets back to Redis until ``sync_inventory`` (5 min). That
    errs towards ``sold_out``, never towards an oversell.
    """
    if not player.is_active:
        raise domain.AccountSuspended()
    gate = inventory.try_reserve(house_id=house_id, user_id=player.pk, quantity=quantity)
    if gate in (Gate.SOLD_OUT, Gate.CAP_REACHED):
        # Redis forgets (restart, flush): only PostgreSQL knows whether this key reserved.
        stored = idempotency.stored_outcome(
            user_id=player.pk, key=idempotency_key, fingerprint=fingerprint
        )
        if stored is not None:
            return stored
        if gate == Gate.SOLD_OUT:
            metrics.increment("sold_out_answers_total", path="redis")
            raise domain.SoldOut()
        raise domain.ParticipantCapReached()
    redis_took = gate in (Gate.RESERVED, Gate.RESERVED_NEW_MEMBER)
    try:
        if connection.vendor == "postgresql":
            outcome = reserve_with_sql(
                player=player,
                house_id=house_id,
                quantity=quantity,
                promo_code=promo_code,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )
        else:
            outcome = reserve_with_orm(
                player=player,
                house_id=house_id,
                quantity=quantity,
                promo_code=promo_code,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )
    except BaseException as exc:
        if isinstance(exc, domain.SoldOut):
            metrics.increment("sold_out_answers_total", path="database")
        if redis_took:
            _compensate(house_id=house_id, user_id=player.pk, quantity=quantity, gate=gate)
        if gate == Gate.UNKNOWN_HOUSE and isinstance(exc, domain.DomainError):
            _rebuild_after_miss(house_id)  # a refusal: the next one should cost no query
        raise
    if gate == Gate.UNKNOWN_HOUSE:
        _rebuild_after_miss(house_id)
    if outcome.replayed:
        if redis_took:
            _compensate(house_id=house_id, user_id=player.pk, quantity=quantity, gate=gate)
    elif not redis_took and gate != Gate.UNKNOWN_HOUSE:
        # The database took tickets Redis did not count: correct Redis once committed.
        transaction.on_commit(
            lambda: inventory.adjust(
                house_id=house_id, delta=-quantity, user_id=player.pk, participant="add"
            )
        )
    if not outcome.replayed:
        metrics.increment("reservations_created_total")
    return outcome


def _rebuild_after_miss(house_id: int) -> None:
    # After this attempt commits (at once in autocommit): the rebuild reads the database
    # on this connection, and must not run inside, or be lost with, a caller's transaction.
    transaction.on_commit(lambda: rebuild_after_miss(house_id=house_id))


def _compensate(*, house_id: int, user_id: int, quantity: int, gate: Gate) -> None:
    inventory.adjust(
        house_id=house_id,
        delta=quantity,
        user_id=user_id,
        participant="remove" if gate == Gate.RESERVED_NEW_MEMBER else "",
    )


def reserve_with_sql(
    *,
    player: AbstractBaseUser,
    house_id: int,
    quantity: int,
    promo_code: str | None,
    idempotency_key: str | None,
    fingerprint: str,
) -> ReserveOutcome:
    """The PostgreSQL path: the rules in one statement, re-run on a lost race.

    No Redis here (``reserve_tickets`` asks it first); ``reserve_with_orm`` is the
    same contract through the ORM.
    """
    for _attempt in range(MAX_ATTEMPTS):
        now = timezone.now()
        expires_at = now + settings.RESERVATION_TTL
        params = {
            "user_id": player.pk,
            "house_id": house_id,
            "quantity": quantity,
            "promo_code": promo_code,
            "now": now,
            "expires_at": expires_at,
            "expires_at_text": api_datetime(expires_at),
            "reservation_id": uuid.uuid4(),
            "idem_key": idempotency_key,
            "fingerprint": fingerprint,
            "idem_expires_at": now + settings.IDEMPOTENCY_KEY_TTL,
        }
        try:
            row = _run_statement(params)
        except DataError:
            # numeric overflow of price x quantity: outside anything purchasable
            raise domain.PurchaseLimitExceeded() from None
        except (IntegrityError, DatabaseError) as exc:
            if _is_lost_race(exc):
                continue
            raise
        refusal, counted, body_json, _aborted, *previous = row
        if counted:
            return ReserveOutcome(status=201, body=body_json.encode())
        if refusal == "previous_key":
            replay = idempotency.previous_outcome(
                user_id=player.pk,
                key=idempotency_key,
                fingerprint=fingerprint,
                record=StoredKey._make(previous),
            )
            if replay is not None:
                return replay
            continue  # the old record had expired and is gone: reserve afresh
        if refusal is None:
            continue  # passed on the snapshot, lost the counter race: re-read
        error = REFUSALS[refusal]()
        if idempotency_key:
            idempotency.store_refusal(
                user_id=player.pk, key=idempotency_key, fingerprint=fingerprint, error=error
            )
        raise error
    logger.warning("reserve for house %s lost %d races in a row", house_id, MAX_ATTEMPTS)
    raise domain.ServiceUnavailable("The house is very busy; retry shortly.", retry_after=1)


def _run_statement(params: dict) -> tuple:
    if connection.in_atomic_block:
        # Inside a caller's transaction: the helper runs it in a savepoint, so a failed
        # statement does not poison that transaction.
        return _STATEMENT.fetchone(params)
    # Autocommit: the statement is its own transaction. Django's per-request health
    # check (CONN_HEALTH_CHECKS) would add a SELECT 1 round trip; here the statement is
    # the check, and a keyed request found on a dead connection is re-run once (the key
    # makes a re-run replay whatever the first attempt may have committed).
    if connection.connection is not None:
        connection.health_check_done = True
    try:
        return _STATEMENT.fetchone(params)
    except (OperationalError, InterfaceError):
        if params["idem_key"] is None:
            raise
        logger.info("reserve found a dead database connection; reconnecting once")
        connection.close()
        return _STATEMENT.fetchone(params)


def _is_lost_race(exc: DatabaseError) -> bool:
    # RS001: our abort; 23505: a concurrent insert of the same participant or promo slot.
    return sqlstate(exc) in (ABORT_SQLSTATE, "23505")
