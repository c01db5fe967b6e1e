# ruff: noqa: S603  (a local benchmark: psql and gunicorn, loopback URLs only)
"""CPU per ``GET /api/v1/reservations/{id}/`` in one sync gunicorn worker, two trees. A command.

    .venv/bin/python bench/reservation_read_ab.py /tmp/before /tmp/after \\
        [--requests 300] [--rounds 6] [--port 8391]

Each tree is a clean export (``git archive <commit> | tar -x -C DIR``) with a
``.venv`` link. Both run gunicorn with one sync worker (DEBUG off, persistent
database connections, the token cache on) on the PostgreSQL database
``raffle_hc_read_bench`` (dropped and re-created) and Redis db 14. One client
sends requests one at a time (no concurrency: the worker's CPU time per
request is the figure, read from ``/proc/<worker>/schedstat`` in nanoseconds),
alternating A and B each round: the completed reservation (3 tickets, a promo
code) as a polling client reads it (``Accept: application/json``: the lean path
where there is one), the same read sent through DRF (``Accept: application/json,
*/*`` is negotiated by DRF), and ``GET /api/v1/me/``, the cheapest DRF read, as
the same run's yardstick. Then statements per request, counted in each tree's
own process with Django's test client (the token cached first).
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("reserve_bench", HERE / "reserve_bench.py")
reserve_bench = importlib.util.module_from_spec(spec)
sys.modules["reserve_bench"] = reserve_bench  # its dataclasses look themselves up there
spec.loader.exec_module(reserve_bench)

DATABASE = "raffle_hc_read_bench"
# The reserve benchmark's server settings, on this benchmark's database and Redis db.
ENV = {
    **os.environ,
    **reserve_bench.BENCH_ENV,
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "DJANGO_SETTINGS_MODULE": "config.settings",
}

# Run inside a tree (its own code): the seed, and statements per request.
SEED = """
import json, uuid
from datetime import timedelta
from decimal import Decimal
import django
django.setup()
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from lottery.models import PlayerProfile
from payments.models import Payment
from purchases.models import Ticket
from reservations.models import Reservation
from tests.factories import create_house, create_promotion

player = get_user_model().objects.create_user(username="reader")
PlayerProfile.objects.filter(user=player).update(is_verified=True)
token = Token.objects.create(user=player)
house = create_house(total_tickets=1000)
now = timezone.now()
reservation = Reservation.objects.create(
    house=house, user=player, quantity=3, unit_price=Decimal("10.00"),
    discount=Decimal("3.00"), total_price=Decimal("27.00"), currency="EUR",
    promotion=create_promotion(code="BENCH"), status=Reservation.Status.COMPLETED,
    expires_at=now + timedelta(minutes=10), processed_at=now,
)
payment = Payment.objects.create(
    reservation=reservation, amount=reservation.total_price, currency="EUR",
    gateway="fake", payment_token="tok_ok", idempotency_key=str(reservation.pk),
    status=Payment.Status.SUCCEEDED,
)
for number in (1, 2, 3):
    Ticket.objects.create(
        house=house, ticket_number=number, owner=player, reservation=reservation,
        payment=payment, issued_at=now,
    )
print(json.dumps({"token": token.key, "reservation": str(reservation.pk)}))
"""
STATEMENTS = """
import json, sys
import django
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
token, paths = sys.argv[1], json.loads(sys.argv[2])
client = Client(HTTP_AUTHORIZATION=f"Token {token}")
counts = {}
for name, (path, accept) in paths.items():
    assert client.get(path, HTTP_ACCEPT=accept).status_code == 200  # caches the token
    with CaptureQueriesContext(connection) as statements:
        assert client.get(path, HTTP_ACCEPT=accept).status_code == 200
    counts[name] = len(statements)
print(json.dumps(counts))
"""


def in_tree(tree: Path, script: str, *args: str) -> str:
    return subprocess.run(
        [str(tree / ".venv/bin/python"), "-c", script, *args],
        cwd=tree,
        env=ENV,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def recreate_database(tree: Path) -> None:
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c"]
    subprocess.run([*psql, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'], check=True)
    subprocess.run([*psql, f'CREATE DATABASE "{DATABASE}"'], check=True)
    subprocess.run(
        [str(tree / ".venv/bin/python"), "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=tree,
        env=ENV,
        check=True,
    )


def start_server(tree: Path, port: int) -> subprocess.Popen:
    """One worker, so its CPU time is the figure."""
    return reserve_bench.start_server(tree, port, ENV, workers=1)


def worker_pid(master_pid: int) -> int:
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as children:
        (pid,) = children.read().split()
    return int(pid)


def cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as schedstat:
        return int(schedstat.read().split()[0])


def get(port: int, path: str, headers: dict[str, str]) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
        return body
    finally:
        connection.close()


def cpu_ms_per_request(port: int, pid: int, path: str, headers: dict, requests: int) -> float:
    before = cpu_ns(pid)
    for _ in range(requests):
        get(port, path, headers)
    return (cpu_ns(pid) - before) / requests / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--port", type=int, default=8391)
    options = parser.parse_args()
    trees = {"A": options.before.resolve(), "B": options.after.resolve()}

    recreate_database(trees["B"])
    seed = json.loads(in_tree(trees["B"], SEED))
    token = f"Token {seed['token']}"
    read = f"/api/v1/reservations/{seed['reservation']}/"
    paths = {"read": read, "read via DRF": read, "me": "/api/v1/me/"}
    headers = {name: {"Authorization": token, "Accept": "application/json"} for name in paths}
    headers["read via DRF"]["Accept"] = "application/json, */*"
    ports = {"A": options.port, "B": options.port + 1}
    servers = {variant: start_server(tree, ports[variant]) for variant, tree in trees.items()}
    cpu: dict[tuple[str, str], list[float]] = {}
    try:
        workers = {variant: worker_pid(server.pid) for variant, server in servers.items()}
        bodies = {
            get(ports[variant], paths[name], headers[name]) for variant in trees for name in paths
        }
        if len(bodies) != 2:  # the read's and /me/'s: every tree and path says the same
            raise SystemExit(
                "the trees or paths answer differently:\n" + "\n".join(map(str, bodies))
            )
        for variant in trees:  # warm: imports, connections, the token cache
            for name, path in paths.items():
                cpu_ms_per_request(ports[variant], workers[variant], path, headers[name], 50)
        for round_number in range(options.rounds):
            order = ("A", "B") if round_number % 2 == 0 else ("B", "A")
            for name, path in paths.items():
                for variant in order:
                    cpu.setdefault((variant, name), []).append(
                        cpu_ms_per_request(
                            ports[variant], workers[variant], path, headers[name], options.requests
                        )
                    )
    finally:
        for server in servers.values():
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)

    statements = {
        variant: json.loads(
            in_tree(
                tree,
                STATEMENTS,
                seed["token"],
                json.dumps({name: (paths[name], headers[name]["Accept"]) for name in paths}),
            )
        )
        for variant, tree in trees.items()
    }
    print(
        f"one sync worker, {options.rounds} rounds of {options.requests} sequential requests "
        "per tree and path; worker CPU ms per request, median (min-max)"
    )
    print(f"read = GET {paths['read']}")
    for variant, tree in trees.items():
        print(f"{variant} = {tree}")
        for name in paths:
            samples = cpu[(variant, name)]
            print(
                f"  {name:<12} {statistics.median(samples):5.2f} ms "
                f"({min(samples):.2f}-{max(samples):.2f}), "
                f"{statements[variant][name]} statement(s)"
            )
        me = statistics.median(cpu[(variant, "me")])
        for name in ("read", "read via DRF"):
            print(f"  {name} / me: {statistics.median(cpu[(variant, name)]) / me:.2f}")
    ratios = [b / a for a, b in zip(cpu[("A", "read")], cpu[("B", "read")], strict=True)]
    print(
        f"B/A on the read, per round: median {statistics.median(ratios):.2f} "
        f"({min(ratios):.2f}-{max(ratios):.2f})"
    )


if __name__ == "__main__":
    sys.exit(main())
