"""Player writes and the one eligibility rule every purchase path calls."""

import hashlib
import logging
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core import exceptions as domain
from core.audit import log_action
from core.authentication import forget_cached_tokens
from core.locks import lock_rows
from lottery.models import House, PlayerProfile, Promotion
from lottery.signals import house_changed

logger = logging.getLogger(__name__)

User = get_user_model()


def register_player(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """Create a user and their (unverified) player profile in one transaction."""
    candidate = User(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise domain.ValidationFailed(
            [
                {"field": "password", "code": e.code or "invalid", "message": m}
                for e, m in zip(exc.error_list, exc.messages, strict=True)
            ]
        ) from None
    if User.objects.filter(username__iexact=username).exists():
        raise _username_taken()
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password)
            PlayerProfile.objects.get_or_create(user=user)
    except IntegrityError:
        raise _username_taken() from None  # lost a race for the same name
    return user


def _username_taken() -> domain.ValidationFailed:
    return domain.ValidationFailed(
        [{"field": "username", "code": "unique", "message": "This username is taken."}]
    )


def ensure_player_profile(user: AbstractBaseUser) -> PlayerProfile:
    profile, _ = PlayerProfile.objects.get_or_create(user=user)
    return profile


def eligible_player(user: AbstractBaseUser | AnonymousUser | None) -> PlayerProfile:
    """The player may buy: authenticated, active account, verified.

    Fails closed: a missing profile counts as unverified, and a database error
    is 503, never a pass.
    """
    if user is None or not user.is_authenticated:
        raise domain.NotAuthenticated()
    if not user.is_active:
        raise domain.AccountSuspended()
    try:
        profile = PlayerProfile.objects.filter(user_id=user.pk).first()
    except DatabaseError:
        logger.exception("eligibility could not be evaluated")
        raise domain.ServiceUnavailable("Account checks are unavailable; retry shortly.") from None
    return check_profile_eligible(profile)


def eligible_profile_q(*, prefix: str = "") -> Q:
    """``check_profile_eligible``'s pass as a filter (``prefix`` from a row pointing at the
    profile, e.g. ``"user__player_profile__"``): verified and active. Fails closed: a row
    without a profile does not match. ``tests/lottery/test_eligibility.py`` checks they agree."""
    return Q(
        **{
            f"{prefix}is_verified": True,
            f"{prefix}account_status": PlayerProfile.AccountStatus.ACTIVE,
        }
    )


def check_profile_eligible(profile: PlayerProfile | None) -> PlayerProfile:
    if profile is None or not profile.is_verified:
        if profile is not None and profile.account_status != PlayerProfile.AccountStatus.ACTIVE:
            raise domain.AccountSuspended()
        raise domain.AccountNotVerified()
    if profile.account_status != PlayerProfile.AccountStatus.ACTIVE:
        raise domain.AccountSuspended()
    return profile


def set_notifications(*, user: AbstractBaseUser, enabled: bool) -> None:
    """The player switches every notification email on or off (any account status may)."""
    with transaction.atomic():
        profile = ensure_player_profile(user)
        PlayerProfile.objects.filter(pk=profile.pk).update(
            notifications_enabled=enabled, updated_at=timezone.now()
        )


def set_account_status(
    *,
    profile: PlayerProfile,
    account_status: str,
    is_verified: bool,
    actor: AbstractBaseUser | None = None,
) -> PlayerProfile:
    """Staff change a player's standing; cached credentials are dropped at once.

    With an ``actor`` (staff), a change is audited as ``player_status_changed``.
    """
    if account_status not in PlayerProfile.AccountStatus.values:
        raise domain.ValidationFailed(
            [{"field": "account_status", "code": "invalid_choice", "message": "Unknown status."}]
        )
    with transaction.atomic():
        standing = ("account_status", "is_verified")
        before = PlayerProfile.objects.filter(pk=profile.pk).values(*standing).first() or {}
        PlayerProfile.objects.filter(pk=profile.pk).update(
            account_status=account_status, is_verified=is_verified
        )
        after = {"account_status": account_status, "is_verified": is_verified}
        if actor is not None and before != after:
            log_action(
                actor=actor,
                action="player_status_changed",
                obj_type=PlayerProfile,
                obj_id=profile.pk,
                before=before,
                after=after,
            )
        transaction.on_commit(lambda: forget_cached_tokens(profile.user_id))
    profile.refresh_from_db()
    return profile


# --- Houses (staff writes; the admin calls these) ------------------------------

DRAW_SEED_BYTES = 32

# Staff-driven status changes; sales happen only in ``active``.
HOUSE_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("active",),
    "active": ("paused", "closed", "cancelled"),
    "paused": ("active", "closed", "cancelled"),
    "closed": ("cancelled", "drawn"),
}


# Moved only by reservations, checkout, the status transitions and soft delete;
# an edit form never writes them back (it would undo a concurrent change).
HOUSE_FIELDS_NOT_EDITABLE = frozenset(
    {
        "tickets_sold",
        "tickets_reserved",
        "participants_count",
        "next_ticket_number",
        "status",
        "deleted_at",
        "draw_commitment",
        "draw_seed",
        "created_at",
    }
)


def house_edit_errors(
    *, house_id: int | None, total_tickets: int | None, participant_cap: int | None
) -> list[dict[str, str]]:
    """Limits an edit may not cut below what is already sold, reserved or joined."""
    if house_id is None:
        return []
    current = House.objects.filter(pk=house_id).values(
        "tickets_sold", "tickets_reserved", "participants_count"
    )[0]
    errors = []
    taken = current["tickets_sold"] + current["tickets_reserved"]
    if total_tickets is not None and total_tickets < taken:
        errors.append(
            {
                "field": "total_tickets",
                "code": "below_taken",
                "message": f"{taken} tickets are already sold or reserved.",
            }
        )
    if participant_cap is not None and participant_cap < current["participants_count"]:
        errors.append(
            {
                "field": "participant_cap",
                "code": "below_participants",
                "message": f"{current['participants_count']} players already take part.",
            }
        )
    return errors


def _validation_failed(exc: DjangoValidationError) -> domain.ValidationFailed:
    """A model's ``full_clean`` errors as the API's ``errors[]``."""
    return domain.ValidationFailed(
        [
            {"field": field, "code": "invalid", "message": message}
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    )


def _editable_house_fields() -> list[str]:
    return [
        f.name
        for f in House._meta.concrete_fields
        if not f.primary_key and f.name not in HOUSE_FIELDS_NOT_EDITABLE
    ]


def save_house(*, house: House, actor: AbstractBaseUser | None = None) -> House:
    """Create or edit a house's descriptive fields and limits; counters are never set here.

    With an ``actor`` (staff), audited as ``house_created`` or ``house_edited``.
    """
    try:
        house.full_clean(exclude=["tickets_sold", "tickets_reserved", "participants_count"])
    except DjangoValidationError as exc:
        raise _validation_failed(exc) from None
    errors = house_edit_errors(
        house_id=house.pk,
        total_tickets=house.total_tickets,
        participant_cap=house.participant_cap,
    )
    if errors:
        raise domain.ValidationFailed(errors)
    try:
        with transaction.atomic():
            fields = _editable_house_fields()
            audited = [name for name in fields if name != "updated_at"]
            if house.pk is None:
                before, action = {}, "house_created"
                house.save()
            else:
                before = House.objects.filter(pk=house.pk).values(*audited)[0]
                action = "house_edited"
                house.save(update_fields=fields)
            if actor is not None:
                after = {name: getattr(house, name) for name in audited}
                log_action(
                    actor=actor,
                    action=action,
                    obj_type=House,
                    obj_id=house.pk,
                    before=before,
                    after=after,
                )
            transaction.on_commit(lambda: _refresh_inventory(house.pk))
    except IntegrityError:
        # A reservation won the race against this edit: the CHECKs refused the new limits.
        raise domain.ValidationFailed(
            [{"field": "total_tickets", "code": "below_taken", "message": "Limits changed."}],
            detail="Tickets were reserved meanwhile; reload and try again.",
        ) from None
    return house


# The audit name of each staff transition: (from, to) first, then any move to ``to``.
HOUSE_STATUS_ACTIONS: dict[tuple[str | None, str], str] = {
    ("paused", "active"): "house_resumed",
    (None, "active"): "house_activated",
    (None, "paused"): "house_paused",
    (None, "closed"): "house_closed",
    (None, "cancelled"): "house_cancelled",
    (None, "drawn"): "house_drawn",
}


def change_house_status(
    *, house_id: int, to_status: str, actor: AbstractBaseUser | None = None
) -> House:
    """A conditional transition: only from a status that allows ``to_status``.

    Activating a house also commits it to its draw seed (DRAWS.md section 1), in
    the same transaction and only the first time: re-activating after a pause
    keeps the seed and the commitment already published. With an ``actor``
    (staff) the move is audited (``HOUSE_STATUS_ACTIONS``); the system's own
    moves (closing, drawing, a cancellation audited by its caller) pass none.
    """
    allowed_from = [src for src, targets in HOUSE_TRANSITIONS.items() if to_status in targets]
    with transaction.atomic():
        from_status = None
        if actor is not None:  # the status it moves from, for the entry: lock, then read
            [rows] = lock_rows(House.objects.filter(pk=house_id).values_list("status", flat=True))
            from_status = rows[0] if rows else None
        moved = House.objects.filter(
            pk=house_id, status__in=allowed_from, deleted_at__isnull=True
        ).update(status=to_status, updated_at=timezone.now())
        if not moved:
            raise domain.InvalidState(f"This house cannot move to {to_status}.")
        if to_status == House.Status.ACTIVE:
            _commit_to_draw_seed(house_id)
        if actor is not None:
            action = (
                HOUSE_STATUS_ACTIONS.get((from_status, to_status))
                or HOUSE_STATUS_ACTIONS[(None, to_status)]
            )
            log_action(
                actor=actor,
                action=action,
                obj_type=House,
                obj_id=house_id,
                before={"status": from_status},
                after={"status": to_status},
            )
        transaction.on_commit(lambda: _refresh_inventory(house_id))
    return House.objects.get(pk=house_id)


def _commit_to_draw_seed(house_id: int) -> None:
    seed = secrets.token_bytes(DRAW_SEED_BYTES)
    House.objects.filter(pk=house_id, draw_seed__isnull=True, draw_commitment="").update(
        draw_seed=seed, draw_commitment=hashlib.sha256(seed).hexdigest()
    )


def soft_delete_house(*, house_id: int, actor: AbstractBaseUser | None = None) -> None:
    """Hide a house; refused once it has tickets (reserved, sold, or ever issued: a refunded
    ticket is still a ticket). Audited with an actor."""
    now = timezone.now()
    with transaction.atomic():
        deleted = House.objects.filter(
            pk=house_id,
            deleted_at__isnull=True,
            tickets_sold=0,
            tickets_reserved=0,
            next_ticket_number=1,  # no ticket number was ever handed out
        ).update(deleted_at=now, updated_at=now)
        if not deleted:
            raise domain.InvalidState(
                "A house with tickets (reserved, sold or refunded) cannot be deleted."
            )
        if actor is not None:
            log_action(
                actor=actor,
                action="house_soft_deleted",
                obj_type=House,
                obj_id=house_id,
                before={"deleted_at": None},
                after={"deleted_at": now},
            )
        transaction.on_commit(lambda: _refresh_inventory(house_id))


def _refresh_inventory(house_id: int) -> None:
    house_changed.send(sender=House, house_id=house_id)


def save_promotion(*, promotion: Promotion, actor: AbstractBaseUser | None = None) -> Promotion:
    """Create or edit a promotion; ``times_redeemed`` is only moved by reservations.

    With an ``actor`` (staff), audited as ``promotion_created`` or ``promotion_edited``.
    """
    try:
        promotion.full_clean(exclude=["times_redeemed"])
    except DjangoValidationError as exc:
        raise _validation_failed(exc) from None
    fields = [
        f.name
        for f in Promotion._meta.concrete_fields
        if not f.primary_key and f.name not in ("times_redeemed", "created_at", "updated_at")
    ]
    with transaction.atomic():
        if promotion.pk is None:
            before, action = {}, "promotion_created"
            promotion.save()
        else:
            before = Promotion.objects.filter(pk=promotion.pk).values(*fields)[0]
            action = "promotion_edited"
            promotion.save(update_fields=[*fields, "updated_at"])
        if actor is not None:
            log_action(
                actor=actor,
                action=action,
                obj_type=Promotion,
                obj_id=promotion.pk,
                before=before,
                after={name: getattr(promotion, name) for name in fields},
            )
    return promotion
