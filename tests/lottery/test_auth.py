"""Register, token and /me/; players get a profile; eligibility fails closed."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from core import exceptions as domain
from lottery.models import PlayerProfile
from lottery.services import eligible_player, set_account_status
from tests.conftest import client_for

User = get_user_model()
PASSWORD = "a-long-passphrase-9"


def register(client, **overrides):
    body = {"username": "newplayer", "email": "new@example.com", "password": PASSWORD, **overrides}
    return client.post("/api/v1/auth/register/", body, "application/json")


@pytest.mark.django_db
def test_register_creates_an_unverified_active_player(client):
    response = register(client)
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "newplayer"
    assert body["is_verified"] is False
    assert body["account_status"] == "active"
    assert "password" not in body
    assert PlayerProfile.objects.filter(user__username="newplayer").exists()


@pytest.mark.django_db
def test_register_applies_password_validators(client):
    response = register(client, password="123")
    assert response.status_code == 422
    codes = {e["code"] for e in response.json()["errors"] if e["field"] == "password"}
    assert {"password_too_short", "password_entirely_numeric"} <= codes
    assert not User.objects.exists()


@pytest.mark.django_db
def test_register_refuses_a_taken_username_whatever_its_case(client):
    register(client)
    response = register(client, username="NewPlayer")
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "username",
        "code": "unique",
        "message": "This username is taken.",
    }


@pytest.mark.django_db
def test_token_then_me(client):
    register(client)
    token = client.post(
        "/api/v1/auth/token/", {"username": "newplayer", "password": PASSWORD}, "application/json"
    )
    assert token.status_code == 200
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert me.status_code == 200
    assert me.json()["username"] == "newplayer"
    assert me.json()["is_verified"] is False


@pytest.mark.django_db
def test_wrong_password_gets_no_token(client, player):
    response = client.post(
        "/api/v1/auth/token/", {"username": player.username, "password": "nope"}, "application/json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "token" not in response.json()


@pytest.mark.django_db
def test_session_authenticated_unsafe_request_needs_csrf(player):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(player)
    assert client.get("/api/v1/me/").status_code == 200
    response = client.post(
        "/api/v1/auth/register/", {"username": "x"}, "application/json"
    )  # AllowAny endpoint without session auth: CSRF does not apply
    assert response.status_code == 422


@pytest.mark.django_db
def test_users_created_outside_the_api_get_a_profile():
    user = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    assert PlayerProfile.objects.get(user=user).is_verified is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("is_verified", "account_status", "error"),
    [
        (False, "active", domain.AccountNotVerified),
        (True, "suspended", domain.AccountSuspended),
        (True, "banned", domain.AccountSuspended),
        (False, "banned", domain.AccountSuspended),
    ],
)
def test_ineligible_players_are_refused(make_player, is_verified, account_status, error):
    user = make_player(is_verified=is_verified, account_status=account_status)
    with pytest.raises(error):
        eligible_player(user)


@pytest.mark.django_db
def test_verified_active_player_is_eligible(player):
    assert eligible_player(player).user_id == player.pk


@pytest.mark.django_db
def test_anonymous_and_inactive_users_are_refused(player):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(domain.NotAuthenticated):
        eligible_player(AnonymousUser())
    player.is_active = False
    with pytest.raises(domain.AccountSuspended):
        eligible_player(player)


@pytest.mark.django_db
def test_missing_profile_fails_closed(player):
    PlayerProfile.objects.filter(user=player).delete()
    with pytest.raises(domain.AccountNotVerified):
        eligible_player(player)


@pytest.mark.django_db(transaction=True)
def test_eligibility_fails_closed_when_the_database_is_unreachable(player):
    original_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        with pytest.raises(domain.ServiceUnavailable):
            eligible_player(player)
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original_port


@pytest.mark.django_db
def test_suspension_takes_effect_despite_the_token_cache(player):
    from rest_framework.test import APIRequestFactory

    from core.authentication import CachedTokenAuthentication

    token = player.auth_token.key
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {token}")
    CachedTokenAuthentication().authenticate(request)  # fills the cache
    set_account_status(profile=player.player_profile, account_status="suspended", is_verified=True)
    cached_user, _ = CachedTokenAuthentication().authenticate(request)
    with pytest.raises(domain.AccountSuspended):
        eligible_player(cached_user)


@pytest.mark.django_db
def test_deactivated_user_is_refused_at_once_despite_the_token_cache(player):
    client = client_for(player)
    assert client.get("/api/v1/me/").status_code == 200  # token snapshot now cached
    player.is_active = False
    player.save(update_fields=["is_active"])
    assert client.get("/api/v1/me/").status_code == 401


@pytest.mark.django_db
def test_revoked_token_is_refused_at_once(player):
    client = client_for(player)
    assert client.get("/api/v1/me/").status_code == 200
    player.auth_token.delete()
    assert client.get("/api/v1/me/").status_code == 401


@pytest.mark.django_db
def test_me_answers_exactly_the_documented_player_shape(player):
    """The one-statement /me/ read must render what PlayerSerializer (the schema) says."""
    import json

    from rest_framework.renderers import JSONRenderer

    from lottery.api.serializers import PlayerSerializer
    from lottery.selectors import player_with_profile

    documented = json.loads(
        JSONRenderer().render(PlayerSerializer(player_with_profile(player.pk)).data)
    )
    assert client_for(player).get("/api/v1/me/").json() == documented


@pytest.mark.django_db
def test_staff_verify_and_suspend_players_in_the_admin(staff_client, make_player):
    carol = make_player(is_verified=False)
    profile = carol.player_profile
    page = staff_client.get(f"/admin/lottery/playerprofile/{profile.pk}/change/")
    assert page.status_code == 200
    response = staff_client.post(
        f"/admin/lottery/playerprofile/{profile.pk}/change/",
        {"is_verified": "on", "account_status": "active"},
    )
    assert response.status_code == 302
    assert eligible_player(carol).is_verified

    staff_client.post(
        "/admin/lottery/playerprofile/",
        {"action": "suspend", "_selected_action": [profile.pk]},
    )
    with pytest.raises(domain.AccountSuspended):
        eligible_player(carol)


@pytest.mark.django_db
def test_token_auth_falls_back_to_the_database_when_the_cache_is_unreachable(player, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    response = client_for(player).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == player.username
