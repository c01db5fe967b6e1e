"""gunicorn, started with the Procfile's command, stops gracefully on SIGTERM.

The in-flight request is a real checkout that pauses 3 s at the
``checkout.after_charge`` failpoint (tasks run eagerly here, so the charge runs
inside the request). SIGTERM arrives while it is paused: the request still
answers 202 with the checkout completed, no new request is served, and the
master exits 0 well within ``--graceful-timeout``.
"""

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from rest_framework.authtoken.models import Token

from core import failpoints
from payments.models import SandboxLedgerEntry
from purchases.models import Ticket
from reservations.models import Reservation
from tests.workers import PROJECT_ROOT, worker_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PORT = 18395
PAUSE_SECONDS = 3


def procfile_web_command() -> list[str]:
    line = next(
        line
        for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
        if line.startswith("web:")
    )
    command = line.removeprefix("web:").replace("${WEB_CONCURRENCY:-2}", "2")
    argv = shlex.split(command)
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{PORT}"
    return argv


def test_procfile_gives_gunicorn_a_graceful_timeout() -> None:
    argv = procfile_web_command()
    assert int(argv[argv.index("--graceful-timeout") + 1]) >= 10


def test_sigterm_lets_an_in_flight_checkout_request_finish(settings, player, make_house) -> None:
    house = make_house(total_tickets=100)
    token = Token.objects.get(user=player).key
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(settings),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "FAILPOINTS_ENABLED": "1",
        "DEBUG": "1",
    }
    log_path = Path(settings.BASE_DIR) / f".gunicorn-{os.getpid()}.log"
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            procfile_web_command(),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{PORT}"
        headers = {"Authorization": f"Token {token}"}
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health/live/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        reserved = httpx.post(
            f"{base}/api/v1/reservations/",
            json={"house_id": house.pk, "quantity": 2},
            headers={**headers, "Idempotency-Key": "graceful-reserve"},
            timeout=10,
        )
        assert reserved.status_code == 201, reserved.text
        reservation_id = reserved.json()["id"]

        failpoints.arm("checkout.after_charge", action=f"sleep:{PAUSE_SECONDS}", times=1)
        answers: list[httpx.Response] = []
        in_flight = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{base}/api/v1/reservations/{reservation_id}/checkout/",
                    json={"payment_token": "tok_ok"},
                    headers={**headers, "Idempotency-Key": "graceful-checkout"},
                    timeout=30,
                )
            )
        )
        in_flight.start()
        deadline = time.monotonic() + 20
        while failpoints.hits("checkout.after_charge") < 1:
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.05)
        stopped_at = time.monotonic()
        server.send_signal(signal.SIGTERM)

        time.sleep(0.5)
        # No new request is served: the master closed its listener (a connection already
        # in the kernel's backlog waits unanswered, then is reset when the last worker exits).
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/health/live/", timeout=2)

        in_flight.join(timeout=30)
        assert server.wait(timeout=30) == 0
        took = time.monotonic() - stopped_at
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    log = log_path.read_text()
    log_path.unlink(missing_ok=True)
    [answer] = answers
    assert answer.status_code == 202, answer.text
    assert Reservation.objects.get(pk=reservation_id).status == "completed"
    assert SandboxLedgerEntry.objects.filter(kind="charge").count() == 1
    assert Ticket.objects.filter(reservation_id=reservation_id).count() == 2
    assert took < 10  # the request's remaining pause, not the whole graceful timeout
    assert re.search(r"Handling signal: term", log), log[-2000:]
    assert "Shutting down: Master" in log
