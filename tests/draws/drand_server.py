"""A local drand relay for tests: serves recorded quicknet rounds over HTTP on 127.0.0.1.

Also a house closed at the moment that fixes the recorded round, so its draw can be
completed with a real, verifiable signature and no network.
"""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from draws.services.passes import run_due
from draws.verify import QUICKNET
from lottery.models import House
from tests.draws.flow import activated_house, buy
from tests.draws.quicknet_rounds import RECORDED_ROUND

# The moment whose close fixes RECORDED_ROUND with the default 300 s delay.
ROUND_TIME = QUICKNET.genesis_time + (RECORDED_ROUND - 1) * QUICKNET.period
CLOSE_AT = datetime.fromtimestamp(ROUND_TIME - 300, UTC)


class Relay:
    def __init__(self) -> None:
        self.rounds: dict[int, dict[str, str]] = {}  # round -> {"signature", "randomness"}
        self.requests: list[str] = []
        self.url = ""


@contextmanager
def local_relay() -> Iterator[Relay]:
    relay = Relay()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            relay.requests.append(self.path)
            prefix = f"/{QUICKNET.hash}/public/"
            served = None
            if self.path.startswith(prefix) and self.path[len(prefix) :].isdigit():
                number = int(self.path[len(prefix) :])
                if number in relay.rounds:
                    served = {"round": number, **relay.rounds[number]}
            body = json.dumps(served or {"error": "not found"}).encode()
            self.send_response(200 if served else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    relay.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def drand_mode(settings: Any) -> Iterator[Relay]:
    """DRAW_ENTROPY_SOURCE=drand with the local relay as the only one."""
    with local_relay() as relay:
        settings.DRAW_ENTROPY_SOURCE = "drand"
        settings.DRAW_BEACON_URLS = [relay.url]
        settings.DRAW_BEACON_ATTEMPTS = 1
        settings.DRAW_BEACON_TIMEOUT_SECONDS = 2
        yield relay


def sold_house_with_sales_ending_before(moment: datetime, buyers: list[AbstractBaseUser]) -> House:
    """A house sold now (one purchase per buyer), whose sales ended just before ``moment``."""
    house = activated_house(total_tickets=30)
    for quantity, buyer in zip((2, 3, 1), buyers, strict=True):
        buy(buyer, house, quantity)
    House.objects.filter(pk=house.pk).update(
        sales_start_at=moment - timedelta(days=10), sales_end_at=moment - timedelta(minutes=1)
    )
    return house


def closed_at_the_recorded_round(buyers: list[AbstractBaseUser]) -> House:
    """Closed and frozen at CLOSE_AT: its draw's fixed round is RECORDED_ROUND."""
    house = sold_house_with_sales_ending_before(CLOSE_AT, buyers)
    run_due(now=CLOSE_AT)
    return house
