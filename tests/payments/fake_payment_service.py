"""A real HTTP payment service on 127.0.0.1 for the http gateway's tests (a thread, no mocks).

It keeps charges and refunds by idempotency key like a real service, and can
be told to answer slowly (every request, or charges of some tokens) or with
503s for the next requests. It counts the requests it was serving at once.
"""

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PORT_RANGE = range(18000, 18100)


def free_port() -> int:
    for port in PORT_RANGE:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18000-18099")


class FakePaymentService:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self.fail_next = 0
        self.delay = 0.0
        self.token_delays: dict[str, float] = {}  # a charge with this token waits this long
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakePaymentService":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any] | None = None) -> None:
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _misbehave(self, token: str = "") -> bool:
                with service.lock:
                    service.requests += 1
                    delay, failing = service.delay, service.fail_next > 0
                    delay += service.token_delays.get(token, 0.0)
                    if failing:
                        service.fail_next -= 1
                if delay:
                    time.sleep(delay)
                if failing:
                    self._answer(503, {"error": "try later"})
                return failing

            @contextmanager
            def _in_flight(self) -> Iterator[None]:
                with service.lock:
                    service.in_flight += 1
                    service.max_in_flight = max(service.max_in_flight, service.in_flight)
                try:
                    yield
                finally:
                    with service.lock:
                        service.in_flight -= 1

            def do_GET(self) -> None:
                with self._in_flight():
                    self._get()

            def do_POST(self) -> None:
                with self._in_flight():
                    self._post()

            def _get(self) -> None:
                if self._misbehave():
                    return
                key = self.path.rsplit("/", 1)[-1]
                with service.lock:
                    charge = service.charges.get(key)
                self._answer(200, charge) if charge else self._answer(404, {"error": "none"})

            def _post(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self._misbehave(body.get("token", "")):
                    return
                key = self.headers["Idempotency-Key"]
                with service.lock:
                    if self.path == "/v1/charges":
                        record = service.charges.setdefault(
                            key,
                            {
                                "id": f"ch_{uuid.uuid4().hex}",
                                "status": "declined"
                                if body["token"] == "tok_declined"
                                else "succeeded",
                                "decline_code": "card_declined"
                                if body["token"] == "tok_declined"
                                else "",
                                "amount": body["amount"],
                                "currency": body["currency"],
                            },
                        )
                    else:
                        record = service.refunds.setdefault(
                            key, {"id": f"re_{uuid.uuid4().hex}", "status": "succeeded"}
                        )
                self._answer(200, record)

        return Handler
