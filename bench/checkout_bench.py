# ruff: noqa: S603  (a local benchmark: it starts psql, gunicorn and celery itself)
"""Checkout benchmark: completed checkouts per second and checkout -> completed latency.

Starts its own stack on a dedicated database (gunicorn, a Celery worker on the
Redis broker, the sandbox gateway), then C closed-loop clients each repeat:
reserve 1 ticket -> POST checkout -> GET until ``completed``. Everything runs
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
machine. Under each round a ``cpu ms/purchase`` line divides the CPU each
component used during the round (``/proc``: gunicorn master and workers,
Celery main and pool, every postgres and redis-server process, the client
process) by the purchases completed; ``other`` is the rest of the machine's
busy time (other agents' work shows up there), with the load average at the
start. The clients are coroutines in one asyncio event loop in a child
process (``bench/http_client.py``), so their own CPU is small and counted
apart. gunicorn runs with the deployment's ``config/gunicorn.conf.py``
(threaded workers, waits honoured). The clients wait for the outcome with
``Prefer: wait=5`` (one GET); ``--long-poll 0`` makes them poll every 100 ms
instead (with ``--web-threads 1``: sync workers, as before issue 12);
``--gateway-latency-ms MS`` charges through the http gateway at a local
payment service that answers after MS (``--charge-concurrency K``: calls in
flight per batch); ``--profile N`` starts no stack and prints
statements and ms per step of N purchases made one at a time in this process,
then of a queue of checkouts drained by the worker's tasks.

Not a test: it prints numbers. The database named in DATABASE_URL is dropped
and re-created.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlparse

from http_client import ClientProcess, Connection

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


async def checkout_clients(
    base: str, tokens: list[str], house_id: int, seconds: float, long_poll: int = 0
) -> tuple[dict[str, float], int]:
    """C closed-loop clients in one event loop (the client process): reserve -> checkout -> wait.

    Returns reservation id -> wall clock at its checkout POST, and the error count.
    """
    stop_at = time.monotonic() + seconds
    # With long polling one GET waits for the outcome instead of one every 100 ms.
    poll_headers = {"Prefer": f"wait={long_poll}"} if long_poll else None
    started: dict[str, float] = {}
    errors = 0

    async def purchase(http: Connection) -> bool:
        reserved = await http.post(
            "/api/v1/reservations/",
            json={"house_id": house_id, "quantity": 1},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        if reserved.status != 201:
            return False
        reservation_id = reserved.json()["id"]
        started[reservation_id] = time.time()
        accepted = await http.post(
            f"/api/v1/reservations/{reservation_id}/checkout/",
            json={"payment_token": "tok_ok"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        if accepted.status != 202:
            return False
        while True:
            polled = await http.get(f"/api/v1/reservations/{reservation_id}/", headers=poll_headers)
            status = polled.json()["status"]
            if status != "processing":
                return status == "completed"
            if not poll_headers:
                await asyncio.sleep(POLL_SECONDS)

    async def client(token: str) -> None:
        nonlocal errors
        http = Connection(base, {"Authorization": f"Token {token}"}, timeout=30)
        while time.monotonic() < stop_at:
            try:
                completed = await purchase(http)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, KeyError):
                completed = False
            errors += not completed
        http.close()

    await asyncio.gather(*(client(token) for token in tokens))
    return started, errors


async def me_clients(base: str, tokens: list[str], seconds: float) -> tuple[int, float]:
    """C clients repeating ``GET /api/v1/me/``: the requests made and the seconds taken."""
    stop_at = time.monotonic() + seconds
    requests = 0

    async def client(token: str) -> None:
        nonlocal requests
        http = Connection(base, {"Authorization": f"Token {token}"}, timeout=30)
        while time.monotonic() < stop_at:
            (await http.get("/api/v1/me/")).raise_for_status()
            requests += 1
        http.close()

    started = time.monotonic()
    await asyncio.gather(*(client(token) for token in tokens))
    return requests, time.monotonic() - started


def reference_rate(
    clients_process: ClientProcess, base: str, tokens: list[str], seconds: float
) -> tuple[float, int]:
    """The same server's ``GET /api/v1/me/`` rate with the same clients: the in-run yardstick."""
    requests, elapsed = clients_process.run(me_clients, base, tokens, seconds)
    return requests / elapsed, requests


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_table() -> dict[int, tuple[bytes, int, int]]:
    """Every process: pid -> (name, parent pid, CPU ticks of itself and its reaped children)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                data = stat.read()
        except OSError:  # gone since the listing
            continue
        name, _, rest = data[data.index(b"(") + 1 :].rpartition(b")")
        fields = rest.split()
        # utime, stime, cutime, cstime: fields 14-17 of proc(5); rest starts at field 3.
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        table[int(entry.name)] = (name, int(fields[1]), ticks)
    return table


def machine_busy_ticks() -> int:
    """CPU ticks all cores spent not idle (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    return user + nice + system + irq + softirq + steal


class CpuMeter:
    """CPU per component between ``start()`` and ``stop()``, from ``/proc``.

    A component is a process tree (gunicorn master and workers, Celery main and
    pool, the client process) or every process of one name (``postgres``: all
    of the machine's clusters and databases; ``redis-server``). Counting each
    process with its reaped children keeps a worker that exited mid-round.
    ``database`` also singles out the postgres backends connected to it that
    are open at the end (one that exited is only in postgres's total), and
    ``sessions()`` counts the connections opened to it (pg_stat_database).
    """

    NAMES = {"postgres": b"postgres", "redis": b"redis-server"}

    def __init__(
        self,
        roots: dict[str, int],
        database: str = "",
        sessions: Callable[[], int] | None = None,
    ) -> None:
        self.roots, self.database, self.sessions = roots, database.encode(), sessions

    def sample(self) -> dict[str, int]:
        table = self.table = process_table()
        children: dict[int, list[int]] = {}
        for pid, (_, parent, _) in table.items():
            children.setdefault(parent, []).append(pid)
        ticks = {}
        for component, root in self.roots.items():
            tree, total = [root], 0
            while tree:
                pid = tree.pop()
                total += table[pid][2] if pid in table else 0
                tree.extend(children.get(pid, ()))
            ticks[component] = total
        for component, name in self.NAMES.items():
            ticks[component] = sum(t for n, _, t in table.values() if n == name)
        ticks["machine"] = machine_busy_ticks()
        return ticks

    def our_backends(self) -> dict[int, int]:
        backends = {}
        for pid, (name, _, ticks) in self.table.items():
            if name == b"postgres" and self.database:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                        if b" " + self.database + b" " in cmdline.read():
                            backends[pid] = ticks
                except OSError:
                    pass
        return backends

    def start(self) -> None:
        self.load = os.getloadavg()[0]
        self.wall = time.monotonic()
        self.sessions_before = self.sessions() if self.sessions else 0
        self.before, self.backends_before = self.sample(), self.our_backends()

    def stop(self) -> dict[str, float]:
        """CPU seconds per component since ``start()``, and ``other``: the machine's rest."""
        after, backends = self.sample(), self.our_backends()
        used = {c: (after[c] - self.before[c]) / CLOCK_TICKS for c in after}
        if self.sessions:  # a count, not seconds: shown per purchase as it is
            used["connections"] = self.sessions() - self.sessions_before
        used["our_db"] = sum(t - self.backends_before.get(p, 0) for p, t in backends.items())
        used["our_db"] /= CLOCK_TICKS
        used["other"] = used["machine"] - sum(used[c] for c in (*self.roots, *self.NAMES))
        used["wall"], used["load"] = time.monotonic() - self.wall, self.load
        return used


def show_cpu(used: dict[str, float], count: int, unit: str, roots: tuple[str, ...]) -> None:
    """One line: CPU ms per ``unit`` for each component, the machine's total and its load."""
    per = 1000 / max(count, 1)
    parts = [f"{c} {used[c] * per:.1f}" for c in roots if c != "clients"]
    ours = f"our db's open backends {used['our_db'] * per:.1f}"
    if "connections" in used:
        ours += f", {used['connections'] / max(count, 1):.2f} connections opened per {unit}"
    parts.append(f"postgres {used['postgres'] * per:.1f} ({ours})")
    parts += [f"redis {used['redis'] * per:.1f}", f"clients {used['clients'] * per:.1f}"]
    parts.append(f"other {used['other'] * per:.1f}")
    busy = used["machine"] / (used["wall"] * (os.cpu_count() or 1)) * 100
    print(
        f"{'':>7} cpu ms/{unit}: {', '.join(parts)}; machine {used['machine'] * per:.1f} "
        f"({busy:.0f}% of {os.cpu_count()} cores); load {used['load']:.2f} at start",
        flush=True,
    )


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
    # The worker under a queue: BATCH checkouts waiting, then the tasks they sent run (one
    # per checkout before coalescing, each but the first finding its checkout settled; one
    # drain for the burst after it), then the relay.
    import purchases.services.checkout as checkout_service

    batch_size = getattr(checkout_service, "BATCH_SIZE", 20)  # 20 before batching too
    # Where a checkout's task message leaves the service (enqueue_checkout before coalescing).
    sender = (
        "_send_checkout_task"
        if hasattr(checkout_service, "_send_checkout_task")
        else "enqueue_checkout"
    )
    for _ in range(5):
        queued, sent = [], []
        with mock.patch.object(
            checkout_service, sender, side_effect=lambda rid, sent=sent, **_: sent.append(rid)
        ):
            for _ in range(batch_size):
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
            f"worker: {batch_size} queued, their tasks",
            lambda sent=sent: [process_checkout(reservation_id=uuid.UUID(str(r))) for r in sent],
        )
        assert all(
            client.get(f"/api/v1/reservations/{r}/").json()["status"] == "completed" for r in queued
        )
        steps.setdefault("tasks sent by the queue", []).append((0.0, len(sent)))
        measure(f"worker: relay of {batch_size}", outbox.relay_pending_events)
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
    clients_process: ClientProcess,
    meter: CpuMeter | None,
    base: str,
    tokens: list[str],
    house_id: int,
    clients: int,
    seconds: float,
    long_poll: int = 0,
) -> dict:
    from reservations.models import Reservation

    if meter:
        meter.start()
    started, errors = clients_process.run(
        checkout_clients, base, tokens[:clients], house_id, seconds, long_poll
    )
    cpu = meter.stop() if meter else {}
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
        "errors": errors,
        "cpu": cpu,
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
        "--web-threads",
        type=int,
        help="gunicorn threads per worker (default: config/gunicorn.conf.py's WEB_THREADS)",
    )
    parser.add_argument(
        "--long-poll",
        type=int,
        default=5,
        metavar="N",
        help="clients wait for the outcome with Prefer: wait=N (0: poll every 100 ms)",
    )
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--gateway-latency-ms",
        type=float,
        default=0,
        metavar="MS",
        help="charge through the http gateway at a local payment service answering after MS "
        "(tests/payments/fake_payment_service.py) instead of the in-process sandbox",
    )
    parser.add_argument(
        "--charge-concurrency",
        type=int,
        help="PAYMENT_CHARGE_CONCURRENCY for the http gateway (default: the setting's)",
    )
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
    payment_service = None
    if args.gateway_latency_ms:
        sys.path.insert(0, str(ROOT))
        from tests.payments.fake_payment_service import FakePaymentService

        payment_service = FakePaymentService().start()
        payment_service.delay = args.gateway_latency_ms / 1000
        env.update(PAYMENT_GATEWAY="http", PAYMENT_SERVICE_URL=payment_service.url)
    if args.charge_concurrency:
        env["PAYMENT_CHARGE_CONCURRENCY"] = str(args.charge_concurrency)
    recreate_database(database_url)
    if args.long_poll:  # the server honours waits only when told to (docs/api.md)
        env["RESERVATION_WAIT_MAX_SECONDS"] = str(args.long_poll)
    if args.web_threads:  # read by config/gunicorn.conf.py, as in the deployment
        env["WEB_THREADS"] = str(args.web_threads)
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
            "--config",
            str(ROOT / "config" / "gunicorn.conf.py"),
            "--workers",
            str(args.web_workers),
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
    clients_process = ClientProcess()
    meter = CpuMeter(
        {"web": web.pid, "worker": worker.pid, "clients": clients_process.pid},
        database=urlparse(database_url).path.lstrip("/"),
        sessions=database_sessions,
    )
    try:
        wait_until_live(f"{base}/health/live/")
        # warm-up: connections, imports
        run_round(clients_process, None, base, tokens, house_id, 2, 3)
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(
            f"{'clients':>7} {'completed':>9} {'checkouts/s':>11} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'pickup50':>9} {'pickup99':>9} "
            f"{'charge50':>9} {'finish50':>9}"
        )
        for clients in args.clients:
            rounds = [
                run_round(
                    clients_process,
                    meter,
                    base,
                    tokens,
                    house_id,
                    clients,
                    args.seconds,
                    args.long_poll,
                )
                for _ in range(args.repeat)
            ]
            for r in rounds:
                show(r)
                show_cpu(r["cpu"], r["completed"], "purchase", tuple(meter.roots))
            if args.reference_seconds:
                meter.start()
                me, requests = reference_rate(
                    clients_process, base, tokens[:clients], args.reference_seconds
                )
                used = meter.stop()
                median = sorted(rounds, key=lambda r: r["per_second"])[args.repeat // 2]
                print(
                    f"{clients:>7} GET /me/ {me:.0f} req/s; completed/s over /me/: "
                    f"{median['per_second'] / me:.3f}"
                )
                show_cpu(used, requests, "GET /me/", tuple(meter.roots))
            if args.repeat > 1:  # the round with the median throughput
                show(sorted(rounds, key=lambda r: r["per_second"])[args.repeat // 2], "median")
    finally:
        clients_process.close()
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            process.wait(timeout=30)
        if payment_service:
            payment_service.stop()


def database_sessions() -> int:
    """Connections ever opened to this database (PostgreSQL's statistics, flushed within ~1 s)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def wait_until_live(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310  (our own server)
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
