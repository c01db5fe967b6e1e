"""Who may buy: the Python check and its filter form (used by checkout's one statement) agree."""

import itertools

import pytest
from django.contrib.auth import get_user_model

from core import exceptions as domain
from lottery.models import PlayerProfile
from lottery.services import check_profile_eligible, eligible_profile_q

pytestmark = pytest.mark.django_db

User = get_user_model()


def passes_check(profile: PlayerProfile | None) -> bool:
    try:
        check_profile_eligible(profile)
    except domain.DomainError:
        return False
    return True


@pytest.mark.parametrize(
    ("verified", "account_status"),
    [
        *itertools.product([True, False], PlayerProfile.AccountStatus.values),
        (None, None),  # no profile at all: fails closed in both forms
    ],
)
def test_the_filter_matches_exactly_the_profiles_the_check_passes(
    make_player, verified, account_status
) -> None:
    user = make_player()
    PlayerProfile.objects.filter(user=user).delete()
    profile = None
    if verified is not None:
        profile = PlayerProfile.objects.create(
            user=user, is_verified=verified, account_status=account_status
        )
    matched = User.objects.filter(eligible_profile_q(prefix="player_profile__"), pk=user.pk)
    assert matched.exists() == passes_check(profile)
    assert passes_check(profile) == (verified is True and account_status == "active")
