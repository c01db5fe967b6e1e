-- Reserve tickets: every rule, every write and the idempotency record in ONE statement.
-- Run by reservations/services/reserve.py as a prepared statement (core/prepared.py);
-- the named placeholders are its parameters, in the order that module lists them.
-- The rules and their order are described there. A conditional write that loses a
-- race after the counter moved calls reservations_abort() (SQLSTATE RS001): the
-- whole statement is rolled back and the service re-runs it.
-- {house_on_sale:x} is replaced at load by lottery.on_sale.on_sale_sql for the house
-- row aliased x: "on sale" is defined once, there.
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
        h.sales_start_at, h.sales_end_at, h.deleted_at,
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
            WHEN NOT {house_on_sale:f} THEN 'sales_closed'
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
      AND {house_on_sale:h}
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
