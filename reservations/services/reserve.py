"""Reserving tickets: the hot path of the whole system.

Order of the rules (each refusal leaves nothing behind): eligibility (active,
verified player; fails closed), house exists and not deleted, ``active``,
inside the sales window, quantity within the per-purchase bounds and the
player's remaining per-user allowance, promotion valid and under its limits,
then the conditional counter UPDATE (invariant 1), the participant upsert
(invariant 3), the promotion counter, the reservation row and the
idempotency record.

On PostgreSQL all of that is ONE SQL statement (a CTE). Why: a reservation
through the ORM costs ~6 round trips and 4-6 ms of Python, which caps one
house near 250-300 reservations/s on two cores; one statement reaches 500+/s.
The statement is safe on its own: every write is conditional and re-checked
on the latest row version (READ COMMITTED re-evaluates UPDATE ... WHERE), and
when one conditional write loses a race after others succeeded, the final
SELECT calls ``reservations_abort()`` which raises and rolls the whole
statement back; the service then re-runs it on a fresh snapshot, where the
rules give the right answer. Redis is asked first (``reservations.inventory``)
so a sold-out house is answered without PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime

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
from core.errors import PROBLEM_CONTENT_TYPE, problem_body
from core.models import IdempotencyRecord
from reservations import inventory
from reservations.inventory import Gate

logger = logging.getLogger(__name__)

ABORT_SQLSTATE = "RS001"
MAX_ATTEMPTS = 4

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


@dataclass(frozen=True)
class ReserveOutcome:
    """The HTTP-ready answer: the reservation JSON (201) or a replayed stored response."""

    status: int
    body: bytes
    content_type: str = "application/json"
    replayed: bool = False

    def data(self) -> dict:
        return json.loads(self.body)


_RESERVE_SQL = """
WITH
profile AS (
    SELECT is_verified, account_status FROM lottery_playerprofile WHERE user_id = %(user_id)s
),
house AS (
    SELECT * FROM lottery_house WHERE id = %(house_id)s AND deleted_at IS NULL
),
held AS (
    SELECT tickets_held FROM lottery_houseparticipant
    WHERE house_id = %(house_id)s AND user_id = %(user_id)s
),
promo AS (
    SELECT * FROM lottery_promotion
    WHERE %(promo_code)s::text IS NOT NULL AND upper(code) = upper(%(promo_code)s::text)
),
promo_slots_taken AS (
    SELECT r.slot FROM lottery_promotionredemption r JOIN promo ON r.promotion_id = promo.id
    WHERE r.user_id = %(user_id)s
),
previous_key AS (
    SELECT fingerprint, status, response_status, response_body, response_content_type,
           expires_at
    FROM core_idempotencyrecord
    WHERE %(idem_key)s::text IS NOT NULL AND user_id = %(user_id)s AND key = %(idem_key)s::text
),
facts AS (
    SELECT
        h.id AS house_id, h.status, h.ticket_price, h.currency, h.total_tickets,
        h.tickets_sold, h.tickets_reserved, h.participant_cap, h.participants_count,
        h.min_tickets_per_purchase, h.max_tickets_per_purchase, h.max_tickets_per_user,
        h.sales_start_at, h.sales_end_at,
        p.is_verified, p.account_status,
        (SELECT tickets_held FROM held) AS tickets_held,
        pr.id AS promo_id, pr.is_active AS promo_active, pr.valid_from, pr.valid_until,
        pr.house_id AS promo_house_id, pr.max_redemptions, pr.times_redeemed,
        pr.per_user_limit, pr.discount_percent, pr.discount_amount,
        pr.currency AS promo_currency,
        (SELECT count(*) FROM promo_slots_taken) AS promo_uses,
        (SELECT min(s) FROM generate_series(1, pr.per_user_limit) AS s
         WHERE s NOT IN (SELECT slot FROM promo_slots_taken WHERE slot IS NOT NULL))
            AS promo_slot,
        h.ticket_price * %(quantity)s AS subtotal
    FROM (SELECT 1) AS one
    LEFT JOIN house h ON true
    LEFT JOIN profile p ON true
    LEFT JOIN promo pr ON true
),
verdict AS (
    SELECT
        f.*,
        CASE
            WHEN EXISTS (SELECT 1 FROM previous_key) THEN 'previous_key'
            WHEN f.account_status IS NULL THEN 'account_not_verified'
            WHEN f.account_status <> 'active' THEN 'account_suspended'
            WHEN NOT f.is_verified THEN 'account_not_verified'
            WHEN f.house_id IS NULL OR f.status = 'draft' THEN 'not_found'
            WHEN f.status <> 'active' OR %(now)s < f.sales_start_at
                 OR %(now)s >= f.sales_end_at THEN 'sales_closed'
            WHEN %(quantity)s < f.min_tickets_per_purchase
                 OR %(quantity)s > f.max_tickets_per_purchase THEN 'purchase_limit_exceeded'
            WHEN f.max_tickets_per_user IS NOT NULL
                 AND coalesce(f.tickets_held, 0) + %(quantity)s > f.max_tickets_per_user
                 THEN 'purchase_limit_exceeded'
            WHEN %(promo_code)s::text IS NOT NULL AND (
                 f.promo_id IS NULL OR NOT f.promo_active
                 OR %(now)s < f.valid_from OR %(now)s >= f.valid_until
                 OR (f.promo_house_id IS NOT NULL AND f.promo_house_id <> f.house_id)
                 OR (f.max_redemptions IS NOT NULL AND f.times_redeemed >= f.max_redemptions)
                 OR (f.per_user_limit IS NOT NULL AND f.promo_uses >= f.per_user_limit)
                 OR (f.discount_amount IS NOT NULL AND f.promo_currency <> f.currency)
            ) THEN 'promotion_invalid'
            WHEN f.tickets_sold + f.tickets_reserved + %(quantity)s > f.total_tickets
                 THEN 'sold_out'
            WHEN f.participant_cap IS NOT NULL AND f.tickets_held IS NULL
                 AND f.participants_count >= f.participant_cap THEN 'participant_cap_reached'
        END AS refusal,
        CASE WHEN f.tickets_held IS NULL THEN 1 ELSE 0 END AS new_participant,
        CASE
            WHEN f.discount_percent IS NOT NULL
                THEN round(f.subtotal * f.discount_percent / 100, 2)
            WHEN f.discount_amount IS NOT NULL THEN least(f.discount_amount, f.subtotal)
            ELSE 0
        END AS discount
    FROM facts f
),
-- Invariants 1 and 3: re-checked by PostgreSQL on the latest version of the row.
house_update AS (
    UPDATE lottery_house h
    SET tickets_reserved = h.tickets_reserved + %(quantity)s,
        participants_count = h.participants_count + v.new_participant
    FROM verdict v
    WHERE v.refusal IS NULL AND h.id = %(house_id)s
      AND h.status = 'active' AND h.deleted_at IS NULL
      AND h.tickets_sold + h.tickets_reserved + %(quantity)s <= h.total_tickets
      AND (v.new_participant = 0 OR h.participant_cap IS NULL
           OR h.participants_count < h.participant_cap)
    RETURNING h.id
),
participant AS (
    INSERT INTO lottery_houseparticipant AS hp (house_id, user_id, tickets_held, created_at)
    SELECT %(house_id)s, %(user_id)s, %(quantity)s, %(now)s FROM house_update
    ON CONFLICT (house_id, user_id) DO UPDATE
        SET tickets_held = hp.tickets_held + EXCLUDED.tickets_held
        WHERE hp.tickets_held + EXCLUDED.tickets_held
              <= coalesce((SELECT max_tickets_per_user FROM verdict), 2147483647)
    RETURNING (xmax = 0) AS inserted
),
promo_update AS (
    UPDATE lottery_promotion p
    SET times_redeemed = p.times_redeemed + 1
    FROM verdict v, house_update
    WHERE p.id = v.promo_id
      AND (p.max_redemptions IS NULL OR p.times_redeemed < p.max_redemptions)
    RETURNING p.id
),
reservation AS (
    INSERT INTO reservations_reservation (
        id, house_id, user_id, quantity, unit_price, discount, total_price, currency,
        promotion_id, status, expires_at, processed_at, failure_code, created_at, updated_at
    )
    SELECT %(reservation_id)s, %(house_id)s, %(user_id)s, %(quantity)s, v.ticket_price,
           v.discount, v.subtotal - v.discount, v.currency, v.promo_id, 'pending',
           %(expires_at)s, NULL, '', %(now)s, %(now)s
    FROM verdict v, house_update
    RETURNING id, unit_price, discount, total_price, currency
),
redemption AS (
    INSERT INTO lottery_promotionredemption (promotion_id, reservation_id, user_id, slot,
                                             created_at)
    SELECT v.promo_id, r.id, %(user_id)s, v.promo_slot, %(now)s
    FROM verdict v, reservation r
    WHERE v.promo_id IS NOT NULL
    RETURNING id
),
body AS (
    SELECT jsonb_build_object(
        'id', r.id, 'house_id', %(house_id)s, 'quantity', %(quantity)s,
        'unit_price', r.unit_price::text, 'discount', r.discount::text,
        'total_price', r.total_price::text, 'currency', r.currency,
        'status', 'pending', 'expires_at', %(expires_at_text)s::text
    )::text AS json
    FROM reservation r
),
idempotency AS (
    INSERT INTO core_idempotencyrecord (user_id, key, fingerprint, status, response_status,
        response_body, response_content_type, created_at, expires_at)
    SELECT %(user_id)s, %(idem_key)s::text, %(fingerprint)s, 'completed', 201,
           convert_to(b.json, 'UTF8'), 'application/json', %(now)s, %(idem_expires_at)s
    FROM body b
    WHERE %(idem_key)s::text IS NOT NULL
    ON CONFLICT (user_id, key) DO NOTHING
    RETURNING id
),
outcome AS (
    SELECT
        (SELECT refusal FROM verdict) AS refusal,
        EXISTS (SELECT 1 FROM house_update) AS counted,
        (SELECT inserted FROM participant) AS participant_inserted,
        (SELECT new_participant FROM verdict) AS new_participant,
        (SELECT promo_id FROM verdict) AS promo_id,
        EXISTS (SELECT 1 FROM promo_update) AS promo_counted,
        EXISTS (SELECT 1 FROM redemption) AS redeemed,
        EXISTS (SELECT 1 FROM idempotency) AS key_stored,
        (SELECT json FROM body) AS json
)
SELECT
    o.refusal, o.counted, o.json,
    -- A conditional write lost a race after the counter moved: undo the whole statement.
    CASE
        WHEN NOT o.counted THEN NULL
        WHEN o.participant_inserted IS NULL
            THEN reservations_abort('per-user limit reached concurrently')
        WHEN o.participant_inserted <> (o.new_participant = 1)
            THEN reservations_abort('participant changed concurrently')
        WHEN o.promo_id IS NOT NULL AND NOT (o.promo_counted AND o.redeemed)
            THEN reservations_abort('promotion limit reached concurrently')
        WHEN %(idem_key)s::text IS NOT NULL AND NOT o.key_stored
            THEN reservations_abort('idempotency key taken concurrently')
    END AS aborted,
    k.fingerprint, k.status, k.response_status, k.response_body, k.response_content_type,
    k.expires_at
FROM outcome o LEFT JOIN previous_key k ON true
"""


# The statement is PREPAREd once per database connection (connections are
# persistent) and then EXECUTEd with 11 values: PostgreSQL plans it once, and the
# driver never re-parses 7 kB of SQL per request.
_PARAMETERS: tuple[tuple[str, str], ...] = (
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
)
_STATEMENT_NAME = "reservations_reserve_v1"


def _numbered(sql: str) -> str:
    for number, (name, _type) in enumerate(_PARAMETERS, start=1):
        sql = sql.replace(f"%({name})s", f"${number}")
    return sql


_PREPARE_SQL = (
    f"PREPARE {_STATEMENT_NAME} ({', '.join(t for _n, t in _PARAMETERS)}) AS "
    + _numbered(_RESERVE_SQL)
)
_EXECUTE_SQL = f"EXECUTE {_STATEMENT_NAME} ({', '.join(['%s'] * len(_PARAMETERS))})"
_prepared_on: weakref.WeakSet = weakref.WeakSet()


def _iso(value: datetime) -> str:
    # The same text DRF renders for a UTC datetime, so replays are byte-identical.
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


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
        stored = _stored_outcome(player_id=player.pk, key=idempotency_key, fingerprint=fingerprint)
        if stored is not None:
            return stored
        raise domain.SoldOut() if gate == Gate.SOLD_OUT else domain.ParticipantCapReached()
    redis_took = gate in (Gate.RESERVED, Gate.RESERVED_NEW_MEMBER)
    try:
        if connection.vendor == "postgresql":
            outcome = _reserve_in_one_statement(
                player=player,
                house_id=house_id,
                quantity=quantity,
                promo_code=promo_code,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )
        else:
            from reservations.services.reserve_orm import reserve_with_orm

            outcome = reserve_with_orm(
                player=player,
                house_id=house_id,
                quantity=quantity,
                promo_code=promo_code,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )
    except BaseException:
        if redis_took:
            _compensate(house_id=house_id, user_id=player.pk, quantity=quantity, gate=gate)
        raise
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
    return outcome


def _compensate(*, house_id: int, user_id: int, quantity: int, gate: Gate) -> None:
    inventory.adjust(
        house_id=house_id,
        delta=quantity,
        user_id=user_id,
        participant="remove" if gate == Gate.RESERVED_NEW_MEMBER else "",
    )


def _reserve_in_one_statement(
    *,
    player: AbstractBaseUser,
    house_id: int,
    quantity: int,
    promo_code: str | None,
    idempotency_key: str | None,
    fingerprint: str,
) -> ReserveOutcome:
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
            "expires_at_text": _iso(expires_at),
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
            replay = _previous_key_outcome(
                player_id=player.pk, key=idempotency_key, fingerprint=fingerprint, row=previous
            )
            if replay is not None:
                return replay
            continue  # the old record had expired and is gone: reserve afresh
        if refusal is None:
            continue  # passed on the snapshot, lost the counter race: re-read
        error = REFUSALS[refusal]()
        if idempotency_key:
            _store_refusal(
                player_id=player.pk, key=idempotency_key, fingerprint=fingerprint, error=error
            )
        raise error
    logger.warning("reserve for house %s lost %d races in a row", house_id, MAX_ATTEMPTS)
    raise domain.ServiceUnavailable("The house is very busy; retry shortly.", retry_after=1)


def _run_statement(params: dict) -> tuple:
    if connection.in_atomic_block:
        # Inside a caller's transaction a failed statement must not poison it: savepoint.
        with transaction.atomic():
            return _execute_prepared(params)
    # Autocommit: the statement is its own transaction. Django's per-request health
    # check (CONN_HEALTH_CHECKS) would add a SELECT 1 round trip; here the statement is
    # the check, and a keyed request found on a dead connection is re-run once (the key
    # makes a re-run replay whatever the first attempt may have committed).
    if connection.connection is not None:
        connection.health_check_done = True
    try:
        return _execute_prepared(params)
    except (OperationalError, InterfaceError):
        if params["idem_key"] is None:
            raise
        logger.info("reserve found a dead database connection; reconnecting once")
        connection.close()
        return _execute_prepared(params)


def _execute_prepared(params: dict) -> tuple:
    connection.ensure_connection()
    raw = connection.connection
    with connection.cursor() as cursor:
        if raw not in _prepared_on:
            cursor.execute(_PREPARE_SQL)
            _prepared_on.add(raw)
        cursor.execute(_EXECUTE_SQL, [params[name] for name, _type in _PARAMETERS])
        return cursor.fetchone()


def _is_lost_race(exc: DatabaseError) -> bool:
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    if sqlstate == "26000":  # the session lost its prepared statement (DISCARD): prepare again
        _prepared_on.discard(connection.connection)
        return True
    # RS001: our abort; 23505: a concurrent insert of the same participant or promo slot.
    return sqlstate in (ABORT_SQLSTATE, "23505")


def _stored_outcome(*, player_id: int, key: str | None, fingerprint: str) -> ReserveOutcome | None:
    """The outcome stored under ``key``, if any: one read on the unique (user, key) index."""
    if not key:
        return None
    rows = IdempotencyRecord.objects.filter(user_id=player_id, key=key).values_list(
        "fingerprint",
        "status",
        "response_status",
        "response_body",
        "response_content_type",
        "expires_at",
    )[:1]
    for row in rows:
        return _previous_key_outcome(
            player_id=player_id, key=key, fingerprint=fingerprint, row=list(row)
        )
    return None


def _previous_key_outcome(
    *, player_id: int, key: str | None, fingerprint: str, row: list
) -> ReserveOutcome | None:
    stored_fingerprint, status, response_status, response_body, content_type, expires_at = row
    if expires_at <= timezone.now():
        IdempotencyRecord.objects.filter(
            user_id=player_id, key=key, expires_at__lte=timezone.now()
        ).delete()
        return None
    if stored_fingerprint != fingerprint:
        raise domain.IdempotencyKeyReused()
    if status != "completed":
        raise domain.IdempotencyKeyInProgress()
    return ReserveOutcome(
        status=response_status,
        body=bytes(response_body or b""),
        content_type=content_type or "application/json",
        replayed=True,
    )


def _store_refusal(
    *, player_id: int, key: str, fingerprint: str, error: domain.DomainError
) -> None:
    """Business refusals are outcomes too: a retry with the same key replays them."""
    now = timezone.now()
    body = problem_body(
        status=error.status_code, code=error.code, title=error.title, detail=str(error.detail)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO core_idempotencyrecord (user_id, key, fingerprint, status,"
            " response_status, response_body, response_content_type, created_at, expires_at)"
            " VALUES (%s, %s, %s, 'completed', %s, %s, %s, %s, %s)"
            " ON CONFLICT (user_id, key) DO NOTHING",
            [
                player_id,
                key,
                fingerprint,
                error.status_code,
                json.dumps(body).encode(),
                PROBLEM_CONTENT_TYPE,
                now,
                now + settings.IDEMPOTENCY_KEY_TTL,
            ],
        )
