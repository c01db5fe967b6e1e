from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_delete, post_migrate, post_save


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from rest_framework.authtoken.models import Token

        # Imported for their side effects: system checks, Celery task metrics.
        from core import checks, observability  # noqa: F401
        from core.authentication import (
            drop_cached_token_on_delete,
            drop_cached_tokens_on_user_change,
        )

        post_migrate.connect(_write_beat_schedule, sender=self)
        # Cache invalidation, not business logic: cached credentials must never
        # outlive a deactivated user or a revoked token.
        post_save.connect(drop_cached_tokens_on_user_change, sender=settings.AUTH_USER_MODEL)
        post_delete.connect(drop_cached_token_on_delete, sender=Token)


def _write_beat_schedule(**kwargs: object) -> None:
    from core.beat_schedule import sync_beat_schedule

    sync_beat_schedule()
