from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(_write_beat_schedule, sender=self)


def _write_beat_schedule(**kwargs: object) -> None:
    from core.beat_schedule import sync_beat_schedule

    sync_beat_schedule()
