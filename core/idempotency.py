"""``Idempotency-Key`` support for mutating API views.

The key is claimed (committed) before the view runs, so a concurrent request
with the same key sees it: same key still running -> 409, same key with another
method/path/body -> 422, same key and request after completion -> the stored
status and body again with ``Idempotent-Replayed: true``. Validation failures
and server errors release the key so the client may fix and retry.
"""

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from core import exceptions as domain
from core.errors import PROBLEM_CONTENT_TYPE, as_domain_error, problem_body
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# A claim older than this belongs to a request that died; it may be taken over.
ABANDONED_AFTER = timedelta(minutes=5)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def read_idempotency_key(request: HttpRequest, *, required: bool) -> str | None:
    key = request.headers.get(HEADER, "").strip()
    if not key:
        if required:
            raise domain.ValidationFailed(
                [{"field": HEADER, "code": "required", "message": "This header is required."}],
                detail=f"The {HEADER} header is required for this request.",
            )
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise domain.ValidationFailed(
            [{"field": HEADER, "code": "invalid", "message": "At most 255 printable characters."}]
        )
    return key


def claim_key(*, user_id: int, key: str, fingerprint: str) -> IdempotencyRecord | HttpResponse:
    """Claim the key for this request, or answer with the replay/409/422 it deserves."""
    now = timezone.now()
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    user_id=user_id,
                    key=key,
                    fingerprint=fingerprint,
                    created_at=now,
                    expires_at=now + settings.IDEMPOTENCY_KEY_TTL,
                )
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
        if record is None:
            continue  # released between our insert and read: try again
        if record.expires_at <= now:
            IdempotencyRecord.objects.filter(pk=record.pk, expires_at__lte=now).delete()
            continue
        if record.fingerprint != fingerprint:
            raise domain.IdempotencyKeyReused()
        if record.status == IdempotencyRecord.Status.COMPLETED:
            return replay(record)
        taken_over = IdempotencyRecord.objects.filter(
            pk=record.pk,
            status=IdempotencyRecord.Status.IN_PROGRESS,
            created_at=record.created_at,
            created_at__lt=now - ABANDONED_AFTER,
        ).update(created_at=now)
        if taken_over:
            record.created_at = now
            return record
        raise domain.IdempotencyKeyInProgress()
    raise domain.IdempotencyKeyInProgress()


def replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.response_body or b""),
        status=record.response_status,
        content_type=record.response_content_type or "application/json",
    )
    response[REPLAYED_HEADER] = "true"
    return response


def complete_key(record: IdempotencyRecord, *, status: int, body: bytes, content_type: str) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=IdempotencyRecord.Status.COMPLETED,
        response_status=status,
        response_body=body,
        response_content_type=content_type,
    )


def release_key(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(
        pk=record.pk, status=IdempotencyRecord.Status.IN_PROGRESS
    ).delete()


def _is_stored_outcome(error: domain.DomainError) -> bool:
    """Business refusals are outcomes worth replaying; bad input and 5xx are not."""
    return error.status_code < 500 and not isinstance(error, domain.ValidationFailed)


def idempotent(*, required: bool = True) -> Callable:
    """Decorate a DRF view method (``def post(self, request, ...)``)."""

    def decorator(view_method: Callable[..., Response]) -> Callable[..., Any]:
        @functools.wraps(view_method)
        def wrapper(view: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            key = read_idempotency_key(request, required=required)
            if key is None or not request.user.is_authenticated:
                return view_method(view, request, *args, **kwargs)
            fingerprint = request_fingerprint(request.method, request.path, request.body)
            claim = claim_key(user_id=request.user.pk, key=key, fingerprint=fingerprint)
            if isinstance(claim, HttpResponse):
                return claim
            try:
                response = view_method(view, request, *args, **kwargs)
            except Exception as exc:
                error = as_domain_error(exc)
                if error is not None and _is_stored_outcome(error):
                    body = problem_body(
                        status=error.status_code,
                        code=error.code,
                        title=error.title,
                        detail=str(error.detail),
                    )
                    complete_key(
                        claim,
                        status=error.status_code,
                        body=json.dumps(body).encode(),
                        content_type=PROBLEM_CONTENT_TYPE,
                    )
                else:
                    release_key(claim)
                raise
            if response.status_code >= 500:
                release_key(claim)
                return response
            complete_key(
                claim,
                status=response.status_code,
                body=json.dumps(response.data, cls=JSONEncoder).encode(),
                content_type="application/json",
            )
            return response

        return wrapper

    return decorator
