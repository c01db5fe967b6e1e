import itertools
from collections.abc import Callable

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core import metrics
from lottery.models import House, PlayerProfile, Promotion
from tests.factories import create_house, create_promotion

User = get_user_model()
_usernames = itertools.count(1)


@pytest.fixture(autouse=True)
def clean_redis() -> None:
    """Every test starts with an empty test Redis database (db 15, never the dev one)
    and with zero in every metric."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    client.close()
    metrics.reset()


@pytest.fixture
def make_house(db: None) -> Callable[..., House]:
    return create_house


@pytest.fixture
def make_promotion(db: None) -> Callable[..., Promotion]:
    return create_promotion


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_player(db: None) -> Callable[..., User]:
    def make(
        *,
        username: str | None = None,
        is_verified: bool = True,
        account_status: str = PlayerProfile.AccountStatus.ACTIVE,
        is_staff: bool = False,
    ) -> User:
        user = User.objects.create_user(
            username=username or f"player{next(_usernames)}",
            password="correct horse battery staple",
            is_staff=is_staff,
        )
        PlayerProfile.objects.filter(user=user).update(
            is_verified=is_verified, account_status=account_status
        )
        Token.objects.get_or_create(user=user)
        return user

    return make


@pytest.fixture
def player(make_player: Callable[..., User]) -> User:
    return make_player()


@pytest.fixture
def player_client(player: User) -> APIClient:
    return client_for(player)


def client_for(user: User) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def staff(make_player: Callable[..., User]) -> User:
    """A superuser staff member, as those who run the admin console."""
    user = make_player(is_staff=True)
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    return user


@pytest.fixture
def staff_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client
