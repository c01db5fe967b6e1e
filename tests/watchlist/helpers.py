"""Helpers shared by the notification tests: a purchase, an inbox, a broker that is down."""

from django.core import mail

from lottery.models import House
from purchases.services.checkout import start_checkout
from reservations.models import Reservation
from tests.purchases.conftest import reserve
from watchlist.tasks import send_notification, send_notification_batch


def buy(player: object, house: House, quantity: int = 1) -> Reservation:
    reservation = reserve(player, house, quantity)
    start_checkout(player=player, reservation_id=reservation.pk, payment_token="tok_ok")
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.COMPLETED
    return reservation


def inbox(address: str) -> list[mail.EmailMessage]:
    return [message for message in mail.outbox if message.to == [address]]


class broker_down:
    """The send tasks cannot be queued, as with the broker unreachable."""

    def __enter__(self) -> None:
        self._delays = {task: task.delay for task in (send_notification, send_notification_batch)}

        def refuse(*args: object, **kwargs: object) -> None:
            raise ConnectionError("broker unreachable")

        for task in self._delays:
            task.delay = refuse

    def __exit__(self, *exc: object) -> None:
        for task, delay in self._delays.items():
            task.delay = delay
