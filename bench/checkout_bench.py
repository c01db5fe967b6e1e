# ruff: noqa: S603  (a local benchmark: it starts psql, gunicorn and celery itself)
"""Checkout benchmark: completed checkouts per second and checkout -> completed latency.

Starts its own stack on a dedicated database (gunicorn, a Celery worker on the
Redis broker, the sandbox gateway), then C closed-loop clients each repeat:
reserve 1 ticket -> POST checkout -> poll until ``completed``. Everything runs
on this machine's cores. Latency is measured from just before the checkout
POST to the moment the worker committed ``completed`` (the reservation's
``updated_at``), so the clients' polling interval does not blur it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/raffle_bench_checkout \\
    REDIS_URL=redis://127.0.0.1:6379/11 \\
    .venv/bin/python bench/checkout_bench.py --clients 4 16 --seconds 20

Per C it also prints the medians of the pipeline from the rows' own
timestamps (checkout commit -> task pick-up -> charge recorded -> completed)
and, after the rounds, the same server's ``GET /api/v1/me/`` rate with the
same clients (``--reference-seconds``), the in-run yardstick on a shared
machine. ``--long-poll N`` makes the clients wait with ``Prefer: wait=N``
(use ``--web-threads`` > 1 with it); ``--profile N`` starts no stack and
prints statements and ms per step of N purchases made one at a time in this
process, then of a queue of checkouts drained by the worker's tasks.

Not a test: it prints numbers. The database named in DATABASE_URL is dropped
and re-created.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parents[1]
# Clients poll like a browser would; latency comes from the database, not the polls.
POLL_SECONDS = 0.1
sys.path.insert(0, str(ROOT))


def recreate_database(url: str) -> None:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    base = ["psql", "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 5432)]
    base += ["-U", parsed.username or "postgres", "-d", "postgres", "-q", "-c"]
    subprocess.run([*base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True)
    subprocess.run([*base, f'CREATE DATABASE "{name}"'], check=True)


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def seed(clients: int) -> tuple[int, list[str]]:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from lottery.models import House, PlayerProfile

    now = datetime.now(UTC)
    house = House.objects.create(
        title="Benchmark house",
        city="Porto",
        property_value=Decimal("500000"),
        ticket_price=Decimal("5.00"),
        currency="EUR",
        total_tickets=10_000_000,
        max_tickets_per_purchase=10,
        status=House.Status.ACTIVE,
        sales_start_at=now - timedelta(hours=1),
        sales_end_at=now + timedelta(days=1),
    )
    tokens = []
    for index in range(clients):
        user = get_user_model().objects.create_user(f"bench{index}", password=uuid.uuid4().hex)
        PlayerProfile.objects.update_or_create(user=user, defaults={"is_verified": True})
        tokens.append(Token.objects.create(user=user).key)
    return house.pk, tokens


class Client(threading.Thread):
    def __init__(
        self, base: str, token: str, house_id: int, stop_at: float, long_poll: int = 0
    ) -> None:
        super().__init__(daemon=True)
        # With long polling one GET waits for the outcome instead of one every 100 ms.
        self.poll_headers = {"Prefer": f"wait={long_poll}"} if long_poll else {}
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Token {token}"}, timeout=30
        )
        self.house_id, self.stop_at = house_id, stop_at
        self.started: dict[str, float] = {}  # reservation id -> wall clock at checkout POST
        self.errors = 0

    def run(self) -> None:
        while time.monotonic() < self.stop_at:
            reserved = self.http.post(
                "/api/v1/reservations/",
                json={"house_id": self.house_id, "quantity": 1},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            if reserved.status_code != 201:
                self.errors += 1
                continue
            reservation_id = reserved.json()["id"]
            self.started[reservation_id] = time.time()
            accepted = self.http.post(
                f"/api/v1/reservations/{reservation_id}/checkout/",
                json={"payment_token": "tok_ok"},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            if accepted.status_code != 202:
                self.errors += 1
                continue
            while True:
                status = self.http.get(
                    f"/api/v1/reservations/{reservation_id}/", headers=self.poll_headers
                ).json()["status"]
                if status != "processing":
                    break
                if not self.poll_headers:
                    time.sleep(POLL_SECONDS)
            if status != "completed":
                self.errors += 1


def reference_rate(base: str, tokens: list[str], clients: int, seconds: float) -> float:
    """The same server's ``GET /api/v1/me/`` rate with the same clients: the in-run yardstick."""
    stop_at = time.monotonic() + seconds
    counts = [0] * clients

    def hammer(index: int) -> None:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Token {tokens[index]}"}, timeout=30
        ) as http:
            while time.monotonic() < stop_at:
                http.get("/api/v1/me/").raise_for_status()
                counts[index] += 1

    threads = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def profile(tokens: list[str], house_id: int, purchases: int) -> None:
    """One purchase at a time, in this process: statements and Python time per step.

    The HTTP steps go through Django's test client (every middleware, the real
    views and authentication), the worker step is the task's service call, and
    the relay is the outbox relay the on-commit task would run. No other load.
    """
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    from core import outbox
    from purchases.services.checkout import process_checkout

    client = DjangoClient(HTTP_AUTHORIZATION=f"Token {tokens[0]}", HTTP_HOST="127.0.0.1")
    steps: dict[str, list[tuple[float, int]]] = {}

    def measure(name: str, call: Callable[[], Any]) -> Any:
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            result = call()
            elapsed = (time.perf_counter() - started) * 1000
        steps.setdefault(name, []).append((elapsed, len(queries)))
        return result

    for index in range(purchases + 20):
        if index == 20:
            steps.clear()  # the first 20 warm caches and connections
        reserved = measure(
            "POST /reservations/",
            lambda: client.post(
                "/api/v1/reservations/",
                {"house_id": house_id, "quantity": 1},
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            ),
        )
        reservation_id = reserved.json()["id"]
        measure(
            "POST /checkout/",
            lambda rid=reservation_id: client.post(
                f"/api/v1/reservations/{rid}/checkout/",
                {"payment_token": "tok_ok"},
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            ),
        )
        measure(
            "worker: process_checkout",
            lambda rid=reservation_id: process_checkout(reservation_id=uuid.UUID(rid)),
        )
        measure("worker: relay outbox", outbox.relay_pending_events)
        final = measure(
            "GET /reservations/{id}/",
            lambda rid=reservation_id: client.get(f"/api/v1/reservations/{rid}/"),
        )
        assert final.json()["status"] == "completed", final.json()
    # The worker under a queue: BATCH checkouts waiting, then every one of their tasks runs
    # (the first charges and issues them all, the others find them settled), then the relay.
    try:
        from purchases.services.checkout import BATCH_SIZE
    except ImportError:  # code from before batching: the same queue, one task at a time
        BATCH_SIZE = 20

    for _ in range(5):
        queued = []
        with mock.patch("purchases.services.checkout.enqueue_checkout"):
            for _ in range(BATCH_SIZE):
                reserved = client.post(
                    "/api/v1/reservations/",
                    {"house_id": house_id, "quantity": 1},
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
                )
                rid = reserved.json()["id"]
                client.post(
                    f"/api/v1/reservations/{rid}/checkout/",
                    {"payment_token": "tok_ok"},
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
                )
                queued.append(uuid.UUID(rid))
        measure(
            f"worker: {BATCH_SIZE} queued tasks",
            lambda queued=queued: [process_checkout(reservation_id=r) for r in queued],
        )
        measure(f"worker: relay of {BATCH_SIZE}", outbox.relay_pending_events)
    print(f"{'step':<28} {'ms p50':>7} {'ms mean':>8} {'statements':>10}")
    for name, samples in steps.items():
        times = [t for t, _ in samples]
        counts = [n for _, n in samples]
        print(
            f"{name:<28} {percentile(times, 0.5):>7.2f} {sum(times) / len(times):>8.2f} "
            f"{sum(counts) / len(counts):>10.1f}"
        )


def pipeline_breakdown(started: dict[str, float]) -> dict[str, float]:
    """Medians over a round, from the rows: checkout commit -> task start -> charged -> done."""
    from payments.models import Payment

    rows = Payment.objects.filter(
        reservation_id__in=list(started), reservation__status="completed"
    ).values_list(
        "reservation_id",
        "reservation__processed_at",
        "charge_attempted_at",
        "completed_at",
        "reservation__updated_at",
    )
    pickup, charge, finish = [], [], []
    for _, processed, attempted, charged, done in rows:
        pickup.append((attempted - processed).total_seconds() * 1000)
        charge.append((charged - attempted).total_seconds() * 1000)
        finish.append((done - charged).total_seconds() * 1000)
    if not pickup:
        return {}
    return {
        "pickup_p50_ms": percentile(pickup, 0.5),
        "pickup_p99_ms": percentile(pickup, 0.99),
        "charge_p50_ms": percentile(charge, 0.5),
        "finish_p50_ms": percentile(finish, 0.5),
    }


def run_round(
    base: str, tokens: list[str], house_id: int, clients: int, seconds: float, long_poll: int = 0
) -> dict:
    from reservations.models import Reservation

    stop_at = time.monotonic() + seconds
    workers = [Client(base, tokens[i], house_id, stop_at, long_poll) for i in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    started = {rid: t for w in workers for rid, t in w.started.items()}
    done = dict(
        Reservation.objects.filter(pk__in=list(started), status="completed").values_list(
            "pk", "updated_at"
        )
    )
    latencies = [
        (done[uuid.UUID(rid)].timestamp() - t) * 1000
        for rid, t in started.items()
        if uuid.UUID(rid) in done
    ]
    first = min(started.values())
    last = max(ts.timestamp() for ts in done.values())
    return {
        "clients": clients,
        "completed": len(done),
        "per_second": len(done) / (last - first),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "errors": sum(w.errors for w in workers),
        **pipeline_breakdown(started),
    }


def show(r: dict, label: str = "") -> None:
    print(
        f"{r['clients']:>7} {r['completed']:>9} {r['per_second']:>11.1f} "
        f"{r['p50_ms']:>7.0f} {r['p99_ms']:>7.0f} {r['errors']:>6} "
        f"{r.get('pickup_p50_ms', 0):>9.0f} {r.get('pickup_p99_ms', 0):>9.0f} "
        f"{r.get('charge_p50_ms', 0):>9.1f} {r.get('finish_p50_ms', 0):>9.1f} {label}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="rounds per C; median shown")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument(
        "--web-threads", type=int, default=1, help="gunicorn threads per worker (>1: gthread)"
    )
    parser.add_argument(
        "--long-poll",
        type=int,
        default=0,
        metavar="N",
        help="clients wait for the outcome with Prefer: wait=N instead of polling every 100 ms",
    )
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--reference-seconds",
        type=float,
        default=5,
        help="after each C, GET /api/v1/me/ with the same clients (0: skip)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="no stack: N purchases one at a time in this process, statements and ms per step",
    )
    args = parser.parse_args()

    database_url = os.environ["DATABASE_URL"]
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/11"),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PAYMENT_GATEWAY": "sandbox",
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "RATELIMIT_ENABLE": "0",
        "LOG_LEVEL": "WARNING",
    }
    recreate_database(database_url)
    if args.long_poll:  # the server honours waits only when told to (docs/api.md)
        env["RESERVATION_WAIT_MAX_SECONDS"] = str(args.long_poll)
    child_env = {**os.environ, **env}
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=child_env, check=True)
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    setup_django(env)
    house_id, tokens = seed(max(args.clients))
    if args.profile:
        profile(tokens, house_id, args.profile)
        return

    web = subprocess.Popen(
        [
            str(Path(python).parent / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.web_workers),
            "--threads",
            str(args.web_threads),
        ],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--concurrency",
            str(args.worker_concurrency),
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health/live/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.2)
        run_round(base, tokens, house_id, 2, 3)  # warm-up: connections, imports
        print(
            f"{'clients':>7} {'completed':>9} {'checkouts/s':>11} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'pickup50':>9} {'pickup99':>9} "
            f"{'charge50':>9} {'finish50':>9}"
        )
        for clients in args.clients:
            rounds = [
                run_round(base, tokens, house_id, clients, args.seconds, args.long_poll)
                for _ in range(args.repeat)
            ]
            for r in rounds:
                show(r)
            if args.reference_seconds:
                me = reference_rate(base, tokens, clients, args.reference_seconds)
                median = sorted(rounds, key=lambda r: r["per_second"])[args.repeat // 2]
                print(
                    f"{clients:>7} GET /me/ {me:.0f} req/s; completed/s over /me/: "
                    f"{median['per_second'] / me:.3f}"
                )
            if args.repeat > 1:  # the round with the median throughput
                show(sorted(rounds, key=lambda r: r["per_second"])[args.repeat // 2], "median")
    finally:
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
