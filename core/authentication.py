"""Token authentication with the token -> user lookup cached in Redis.

The hot endpoints (reserve, sold-out answers) must not pay a database query per
request just to authenticate. The cache holds only what authorization needs;
it is dropped whenever a token is deleted or an account changes state
(``forget_cached_tokens``), and a cache failure falls back to the database.
"""

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from core.ratelimit import CACHE_ERRORS

logger = logging.getLogger(__name__)

User = get_user_model()


def _cache_key(token_key: str) -> str:
    return "auth:token:" + hashlib.sha256(token_key.encode()).hexdigest()


def forget_cached_tokens(user_id: int) -> None:
    keys = [
        _cache_key(k) for k in Token.objects.filter(user_id=user_id).values_list("key", flat=True)
    ]
    if keys:
        cache.delete_many(
            keys
        )  # raises if Redis is down: the caller's change must not pass silently


def _user_from_snapshot(snapshot: dict) -> "User":
    user = User(
        id=snapshot["id"],
        username=snapshot["username"],
        is_active=snapshot["is_active"],
        is_staff=snapshot["is_staff"],
        is_superuser=snapshot["is_superuser"],
    )
    user._state.adding = False
    user._state.db = "default"
    return user


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str):
        ttl = settings.TOKEN_CACHE_SECONDS
        cache_key = _cache_key(key)
        if ttl:
            try:
                snapshot = cache.get(cache_key)
            except CACHE_ERRORS:
                snapshot = None
            if snapshot is not None:
                return _user_from_snapshot(snapshot), key
        user, token = super().authenticate_credentials(key)
        if ttl:
            snapshot = {
                "id": user.pk,
                "username": user.username,
                "is_active": user.is_active,
                "is_staff": user.is_staff,
                "is_superuser": user.is_superuser,
            }
            try:
                cache.set(cache_key, snapshot, ttl)
            except CACHE_ERRORS:
                logger.info("token cache unavailable; authenticated from the database")
        return user, token


def drop_cached_tokens_on_user_change(sender: type, instance: object, **kwargs: object) -> None:
    """Any save of a user (deactivation, staff flag) drops their cached token snapshots."""
    try:
        forget_cached_tokens(instance.pk)
    except CACHE_ERRORS:
        # The snapshot expires within TOKEN_CACHE_SECONDS; say so loudly.
        logger.error("could not drop cached tokens of user %s", instance.pk)


def drop_cached_token_on_delete(sender: type, instance: Token, **kwargs: object) -> None:
    try:
        cache.delete(_cache_key(instance.key))
    except CACHE_ERRORS:
        logger.error("could not drop a deleted token from the cache")
