"""draws.beacon.fetch_round against relays served on 127.0.0.1 from recorded rounds."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from draws.beacon import BeaconInvalid, BeaconUnavailable, fetch_round
from draws.verify import QUICKNET
from tests.draws.quicknet_rounds import QUICKNET_ROUNDS, RECORDED_ROUND, flip_bit

Route = Callable[[], tuple[int, object, float]]  # -> (status, JSON body, delay in seconds)


def _body(round_number: int, signature: str | None = None) -> dict:
    recorded = QUICKNET_ROUNDS[round_number]
    return {
        "round": round_number,
        "randomness": recorded["randomness"],
        "signature": signature or recorded["signature"],
    }


class Relay:
    """A drand HTTP relay on a free local port; ``routes`` maps a round to its answer."""

    def __init__(self) -> None:
        self.routes: dict[int, Route] = {}
        self.requests: list[str] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                relay.requests.append(self.path)
                prefix = f"/{QUICKNET.hash}/public/"
                route = None
                if self.path.startswith(prefix) and self.path[len(prefix) :].isdigit():
                    route = relay.routes.get(int(self.path[len(prefix) :]))
                status, body, delay = route() if route else (404, {"error": "not found"}, 0)
                time.sleep(delay)
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def serve(self, round_number: int, *answers: tuple[int, object, float]) -> None:
        """Answer the round with each answer in turn, then keep giving the last one."""
        queue = list(answers)

        def route() -> tuple[int, object, float]:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        self.routes[round_number] = route


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def second_relay() -> Iterator[Relay]:
    server = Relay()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _dead_url() -> str:
    """A local port with nothing listening (bound, then closed)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"


def _fetch(urls: list[str], round_number: int = RECORDED_ROUND, **options: object) -> str:
    arguments = {"timeout": 2.0, "attempts": 2, "backoff_seconds": 0.0, **options}
    return fetch_round(round_number, urls=urls, **arguments)  # type: ignore[arg-type]


def test_fetches_and_verifies_the_round(relay: Relay) -> None:
    relay.serve(RECORDED_ROUND, (200, _body(RECORDED_ROUND), 0))
    assert _fetch([relay.url]) == QUICKNET_ROUNDS[RECORDED_ROUND]["signature"]
    assert relay.requests == [f"/{QUICKNET.hash}/public/{RECORDED_ROUND}"]


def test_relay_url_with_trailing_slash(relay: Relay) -> None:
    relay.serve(3, (200, _body(3), 0))
    assert _fetch([relay.url + "/"], 3) == QUICKNET_ROUNDS[3]["signature"]


@pytest.mark.parametrize("status", [404, 425])
def test_a_round_not_published_yet_is_unavailable(relay: Relay, status: int) -> None:
    relay.serve(RECORDED_ROUND, (status, {"error": "not yet"}, 0))
    with pytest.raises(BeaconUnavailable, match="not published yet"):
        _fetch([relay.url], attempts=3)
    assert len(relay.requests) == 3


def test_retries_with_backoff_until_the_round_is_published(relay: Relay) -> None:
    relay.serve(RECORDED_ROUND, (404, {}, 0), (503, {}, 0), (200, _body(RECORDED_ROUND), 0))
    waits: list[float] = []
    signature = fetch_round(
        RECORDED_ROUND,
        urls=[relay.url],
        timeout=2.0,
        attempts=5,
        backoff_seconds=0.25,
        sleep=waits.append,
    )
    assert signature == QUICKNET_ROUNDS[RECORDED_ROUND]["signature"]
    assert waits == [0.25, 0.5]


def test_a_timeout_is_unavailable(relay: Relay) -> None:
    relay.serve(RECORDED_ROUND, (200, _body(RECORDED_ROUND), 1.5))
    started = time.monotonic()
    with pytest.raises(BeaconUnavailable, match="timed out"):
        _fetch([relay.url], timeout=0.2, attempts=2)
    assert time.monotonic() - started < 1.4


def test_an_unreachable_relay_is_unavailable() -> None:
    with pytest.raises(BeaconUnavailable, match="network error"):
        _fetch([_dead_url()])


def test_falls_over_to_the_next_relay(relay: Relay) -> None:
    relay.serve(RECORDED_ROUND, (200, _body(RECORDED_ROUND), 0))
    assert _fetch([_dead_url(), relay.url]) == QUICKNET_ROUNDS[RECORDED_ROUND]["signature"]


def test_a_bad_signature_is_invalid(relay: Relay) -> None:
    forged = flip_bit(QUICKNET_ROUNDS[RECORDED_ROUND]["signature"], 9)
    relay.serve(RECORDED_ROUND, (200, _body(RECORDED_ROUND, forged), 0))
    with pytest.raises(BeaconInvalid, match="does not verify"):
        _fetch([relay.url], attempts=3)
    assert len(relay.requests) == 1  # an invalid body is not asked for again


def test_another_rounds_signature_is_invalid(relay: Relay) -> None:
    body = {**_body(3), "round": RECORDED_ROUND}  # round 3's signature, labelled as ours
    relay.serve(RECORDED_ROUND, (200, body, 0))
    with pytest.raises(BeaconInvalid, match="does not verify"):
        _fetch([relay.url])


def test_a_body_for_the_wrong_round_is_invalid(relay: Relay) -> None:
    relay.serve(RECORDED_ROUND, (200, _body(3), 0))  # a valid beacon, of another round
    with pytest.raises(BeaconInvalid, match=f"asked for round {RECORDED_ROUND}, got 3"):
        _fetch([relay.url])


def test_randomness_that_is_not_the_signature_hash_is_invalid(relay: Relay) -> None:
    relay.serve(RECORDED_ROUND, (200, {**_body(RECORDED_ROUND), "randomness": "00" * 32}, 0))
    with pytest.raises(BeaconInvalid, match="randomness"):
        _fetch([relay.url])


@pytest.mark.parametrize("body", ["not json", [1, 2], {"round": RECORDED_ROUND}])
def test_a_malformed_body_is_invalid(relay: Relay, body: object) -> None:
    relay.serve(RECORDED_ROUND, (200, body, 0))
    with pytest.raises(BeaconInvalid):
        _fetch([relay.url])


def test_a_lying_relay_does_not_hide_an_honest_one(relay: Relay, second_relay: Relay) -> None:
    relay.serve(RECORDED_ROUND, (200, _body(3), 0))
    second_relay.serve(RECORDED_ROUND, (200, _body(RECORDED_ROUND), 0))
    signature = _fetch([relay.url, second_relay.url])
    assert signature == QUICKNET_ROUNDS[RECORDED_ROUND]["signature"]


def test_a_lying_relay_and_a_down_one_is_unavailable_not_invalid(relay: Relay) -> None:
    relay.serve(RECORDED_ROUND, (200, _body(3), 0))
    with pytest.raises(BeaconUnavailable):
        _fetch([relay.url, _dead_url()])


def test_no_relay_configured_is_unavailable() -> None:
    with pytest.raises(BeaconUnavailable):
        _fetch([])
