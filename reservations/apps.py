from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    name = "reservations"

    def ready(self) -> None:
        from lottery.signals import house_changed
        from reservations.services.inventory_sync import refresh_after_house_change

        house_changed.connect(
            refresh_after_house_change, dispatch_uid="reservations.refresh_after_house_change"
        )
