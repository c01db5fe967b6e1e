"""429 with Retry-After when over the limit; 503 (fail closed) when the cache is gone."""

import pytest

from tests.private_redis import private_redis


def redis_cache(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }


def ask_for_token(client, username="nobody", password="wrong"):
    return client.post(
        "/api/v1/auth/token/",
        data={"username": username, "password": password},
        content_type="application/json",
    )


@pytest.mark.django_db
def test_token_endpoint_is_limited_per_username(client, settings, player):
    settings.RATE_LIMIT_TOKEN_PER_USERNAME = "3/m"
    statuses = [ask_for_token(client, player.username).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = ask_for_token(client, player.username)
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    # Another username from the same address is not affected by that limit.
    assert ask_for_token(client, "someone-else").status_code == 401


@pytest.mark.django_db
def test_token_endpoint_is_limited_per_ip(client, settings):
    settings.RATE_LIMIT_TOKEN_PER_IP = "2/m"
    statuses = [ask_for_token(client, f"user{n}").status_code for n in range(3)]
    assert statuses == [401, 401, 429]


@pytest.mark.django_db
def test_limiter_fails_closed_when_redis_is_stopped(client, settings):
    with private_redis(6390) as server:
        settings.CACHES = redis_cache(server.url)
        assert ask_for_token(client).status_code == 401  # limiter works while Redis is up
        server.stop()
        response = ask_for_token(client)
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert response["Retry-After"]


@pytest.mark.django_db
def test_limiter_fails_closed_when_redis_is_unreachable(client, settings):
    settings.CACHES = redis_cache("redis://127.0.0.1:1/0")  # nothing listens on port 1
    response = ask_for_token(client)
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"


@pytest.mark.django_db
def test_register_is_limited_per_ip(client, settings):
    settings.RATE_LIMIT_REGISTER_PER_IP = "1/h"
    body = {"username": "newplayer", "email": "n@example.com", "password": "a-long-passphrase-9"}
    assert client.post("/api/v1/auth/register/", body, "application/json").status_code == 201
    body["username"] = "another"
    assert client.post("/api/v1/auth/register/", body, "application/json").status_code == 429
