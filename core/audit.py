"""The audit trail: ``log_action`` records one staff write in that write's transaction.

Like pretix's ``log_action``, but every staff write must call it (the test in
``tests/core/test_audit_trail.py`` walks every admin action and staff endpoint).
Services that the system also calls (beat, tasks) take ``actor=None`` there and
write no entry: only a staff user's write is an audit entry.
"""

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models

from core.models import AuditEntry
from core.request_context import get_request_id


def object_type_of(model: type[models.Model] | models.Model) -> str:
    """``app_label.model_name``: how entries name the type of what was written."""
    return model._meta.label_lower


def _plain(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """JSON-ready copy: dates, decimals and UUIDs as the JSON field would store them.

    Aware times go to UTC first, so one instant read from the database and typed
    into a form in another zone is not a change.
    """
    utc = {
        key: value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo else value
        for key, value in (values or {}).items()
    }
    return json.loads(json.dumps(utc, cls=DjangoJSONEncoder))


def changed_fields(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keep only the fields whose value differs (a field missing on one side counts)."""
    old, new = _plain(before), _plain(after)
    keys = [key for key in {**old, **new} if old.get(key) != new.get(key) or key not in old]
    return (
        {key: old[key] for key in keys if key in old},
        {key: new[key] for key in keys if key in new},
    )


def log_action(
    *,
    actor: AbstractBaseUser,
    action: str,
    obj_type: type[models.Model] | models.Model | str,
    obj_id: object,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    """Record one staff write; call it inside the service's ``transaction.atomic()``."""
    if not connection.in_atomic_block:
        # Outside the write's transaction the entry could commit without the write, or not
        # at all with it.
        raise RuntimeError("log_action must run inside the transaction of the write it records")
    if actor is None or not actor.is_authenticated:
        raise ValueError("an audit entry needs the staff user who acted")
    old, new = changed_fields(before, after)
    return AuditEntry.objects.create(
        actor=actor,
        action=action,
        object_type=obj_type if isinstance(obj_type, str) else object_type_of(obj_type),
        object_id=str(obj_id),
        before=old,
        after=new,
        reason=reason or "",
        request_id=get_request_id() or "",
    )
