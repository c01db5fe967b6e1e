"""A local drand relay for tests: serves recorded quicknet rounds over HTTP on 127.0.0.1."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from draws.verify import QUICKNET


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
