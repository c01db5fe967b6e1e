"""The admin login is rate-limited per username and per address, and fails closed.

Beyond the limit the login answers 429 with ``Retry-After`` even for the right
password; when the cache that counts attempts is down it answers 503 (a private
Redis, really stopped), never an unlimited login form.
"""

import pytest
from django.test import Client

from tests.private_redis import private_redis

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"  # tests.conftest.make_player's


def attempt(client: Client, username: str, password: str = "wrong") -> int:
    return client.post("/admin/login/", {"username": username, "password": password}).status_code


def test_admin_login_works_within_the_limit(staff) -> None:
    answer = Client().post("/admin/login/", {"username": staff.username, "password": PASSWORD})
    assert answer.status_code == 302  # logged in, off to the admin


def test_guessing_one_username_is_stopped_after_the_limit(staff, settings) -> None:
    settings.RATE_LIMIT_ADMIN_LOGIN_PER_USERNAME = "3/m"
    client = Client()
    assert [attempt(client, staff.username) for _ in range(3)] == [200, 200, 200]  # form again
    refused = client.post("/admin/login/", {"username": staff.username, "password": PASSWORD})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert refused.json()["code"] == "rate_limited"
    assert attempt(client, "someone-else") == 200  # the limit is per username


def test_one_address_trying_many_usernames_is_stopped(staff, settings) -> None:
    settings.RATE_LIMIT_ADMIN_LOGIN_PER_IP = "4/m"
    client = Client()
    statuses = [attempt(client, f"user{n}") for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def test_admin_login_fails_closed_when_the_cache_is_down(staff, settings) -> None:
    with private_redis(6398) as server:
        settings.CACHES = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": server.url,
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
            }
        }
        assert attempt(Client(), staff.username) == 200
        server.stop()
        refused = Client().post("/admin/login/", {"username": staff.username, "password": PASSWORD})
    assert refused.status_code == 503
    assert refused.json()["code"] == "service_unavailable"
    assert "Retry-After" in refused
