from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_save


class LotteryConfig(AppConfig):
    name = "lottery"

    def ready(self) -> None:
        # Users made outside the register API (admin, createsuperuser) still
        # get a profile; the eligibility check treats a missing one as unverified.
        post_save.connect(_create_profile, sender=settings.AUTH_USER_MODEL)


def _create_profile(
    sender: type, instance: object, created: bool, raw: bool = False, **kwargs: object
) -> None:
    if created and not raw:
        from lottery.services import ensure_player_profile

        ensure_player_profile(instance)
