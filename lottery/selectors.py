"""Reads of players."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from core import exceptions as domain

User = get_user_model()


def player_with_profile(user_id: int) -> AbstractBaseUser:
    user = User.objects.select_related("player_profile").filter(pk=user_id).first()
    if user is None:
        raise domain.NotFound()
    return user
