# ruff: noqa: S603, S607  (a local benchmark: fixed tools, loopback URLs only)
"""Benchmark the reserve hot path through the real HTTP stack. A command, not a test.

    .venv/bin/python bench/reserve_bench.py [--duration 8] [--runs 3] [--concurrency 8 32]

Starts gunicorn (2 workers, persistent database connections, DEBUG off) on
127.0.0.1 against PostgreSQL database ``raffle_bench`` and Redis db 12, seeds
verified players with tokens, then drives it with ``wrk`` (apt: wrk) and
prints, per concurrency C, the median of ``--runs`` runs of:
successful reservations/s on one hot house (at 0 and at 1,000,000 tickets
sold), sold-out answers/s, p50/p99 latency, the oversell count (must be 0),
and the same server's ceiling on ``GET /api/v1/me/``. Only ever talks to
127.0.0.1.

    .venv/bin/python bench/reserve_bench.py --after-redis-flush [--concurrency 32]

measures instead how a sold-out house is answered right after Redis lost
everything: per run, the inventory is synced, the bench's Redis db is flushed
(FLUSHDB on db 12, the bench's own), and ``wrk`` starts at once on the sold-out
house for two windows back to back (the first also refills the token cache the
flush emptied); printed next to the same server's warm sold-out rate and ``/me/``.
``BENCH_DATABASE`` names the PostgreSQL database (default ``raffle_bench``).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_PORT", "8765"))
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "raffle_bench")
if not re.fullmatch(r"raffle_bench\w*", BENCH_DATABASE):
    raise SystemExit("BENCH_DATABASE must be raffle_bench or start with raffle_bench")
BENCH_ENV = {
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{BENCH_DATABASE}",
    "REDIS_URL": "redis://127.0.0.1:6379/12",
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "SECURE_SSL_REDIRECT": "0",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "LOG_LEVEL": "WARNING",
    "TOKEN_CACHE_SECONDS": "3600",
    "DB_CONN_MAX_AGE": "600",
    "CELERY_TASK_ALWAYS_EAGER": "1",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
}
PLAYERS = 2000
FILLED = 1_000_000

os.environ.update(BENCH_ENV)  # never the test or dev databases
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


@dataclass
class Run:
    ok: int
    conflict: int
    other: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.seconds

    @property
    def conflict_per_second(self) -> float:
        return self.conflict / self.seconds


def sh(*args: str, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, env=os.environ, cwd=ROOT, **kwargs)


def prepare_database() -> None:
    exists = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{BENCH_DATABASE}'",  # noqa: S608 (checked name)
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if exists != "1":
        sh("psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {BENCH_DATABASE}")
    sh(sys.executable, "manage.py", "migrate", "--no-input", "-v", "0")


def seed_players(tokens_file: Path) -> None:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from lottery.models import PlayerProfile

    user_model = get_user_model()
    existing = list(
        Token.objects.filter(user__username__startswith="bench").values_list("key", flat=True)
    )
    if len(existing) < PLAYERS:
        users = user_model.objects.bulk_create(
            [user_model(username=f"bench{secrets.token_hex(6)}") for _ in range(PLAYERS)]
        )
        PlayerProfile.objects.bulk_create(
            [PlayerProfile(user=u, is_verified=True) for u in users], ignore_conflicts=True
        )
        Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
        existing = list(
            Token.objects.filter(user__username__startswith="bench").values_list("key", flat=True)
        )
    tokens_file.write_text("\n".join(existing[:PLAYERS]) + "\n")


def new_house(*, sold: int = 0, total: int | None = None, title: str = "bench") -> int:
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from lottery.models import House

    now = timezone.now()
    house = House.objects.create(
        title=title,
        city="Bench",
        property_value=Decimal("1000000.00"),
        ticket_price=Decimal("5.00"),
        total_tickets=total or sold + 50_000_000,
        tickets_sold=sold,
        status=House.Status.ACTIVE,
        min_tickets_per_purchase=1,
        max_tickets_per_purchase=10,
        sales_start_at=now - timedelta(days=1),
        sales_end_at=now + timedelta(days=30),
    )
    return house.pk


def filled_house() -> int:
    """One house with 1,000,000 tickets sold: 1,000,000 completed reservation rows behind it."""
    from django.db import connection

    from lottery.models import House

    house = House.objects.filter(title="bench filled", tickets_sold=FILLED).first()
    if house is not None:
        return house.pk
    house_id = new_house(sold=FILLED, title="bench filled")
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM auth_user WHERE username LIKE 'bench%%' LIMIT 1")
        user_id = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO reservations_reservation (id, house_id, user_id, quantity, unit_price,
                discount, total_price, currency, status, expires_at, failure_code,
                created_at, updated_at, processed_at)
            SELECT gen_random_uuid(), %s, %s, 1, 5.00, 0, 5.00, 'EUR', 'completed',
                   now(), '', now(), now(), now()
            FROM generate_series(1, %s)
            """,
            [house_id, user_id, FILLED],
        )
        cursor.execute("ANALYZE reservations_reservation")
    return house_id


def sync_redis() -> None:
    from reservations.services import sync_inventory

    sync_inventory()


def oversell(house_id: int) -> int:
    """Tickets held beyond the total, counted from the rows (and counters that disagree)."""
    from django.db import connection

    time.sleep(1)  # let requests still inside gunicorn finish
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT h.tickets_sold, h.tickets_reserved, h.total_tickets,
                   coalesce(sum(r.quantity) FILTER (
                       WHERE r.status IN ('pending', 'processing', 'refund_pending')), 0)
            FROM lottery_house h LEFT JOIN reservations_reservation r ON r.house_id = h.id
            WHERE h.id = %s GROUP BY h.id
            """,
            [house_id],
        )
        sold, reserved, total, held = cursor.fetchone()
    if reserved != held:
        print(f"  counters disagree with rows on house {house_id}: {reserved} vs {held}")
    return max(0, sold + held - total)


def start_server(
    tree: Path = ROOT, port: int = PORT, env: dict[str, str] | None = None, workers: int = 2
) -> subprocess.Popen:
    """gunicorn of ``tree`` (its own ``.venv``) on ``port``; ``reserve_ab.py`` starts two,
    ``reservation_read_ab.py`` two of one worker each."""
    server = subprocess.Popen(
        [
            str(tree / ".venv/bin/gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            os.environ.get("BENCH_WORKER_CLASS", "sync"),
            "--threads",
            os.environ.get("BENCH_THREADS", "1"),
            "--keep-alive",
            "30",
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ],
        cwd=tree,
        env=os.environ if env is None else env,
        start_new_session=True,
    )
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live/", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"gunicorn of {tree} did not start")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=20)


RESULT = re.compile(
    r"RESULT ok=(\d+) conflict=(\d+) other=(\d+) errors=(\d+) duration_us=(\d+) "
    r"p50_us=(\d+) p99_us=(\d+)"
)


def wrk(*, concurrency: int, seconds: float, tokens: Path, house_id: int, mode: str) -> Run:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1",  # one wrk thread: the load generator shares the two cores
            "-c",
            str(concurrency),
            "-d",
            f"{int(seconds)}s",
            "--timeout",
            "5s",
            "-s",
            str(ROOT / "bench/reserve.lua"),
            f"http://127.0.0.1:{PORT}",
            "--",
            str(tokens),
            str(house_id),
            mode,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = RESULT.search(out)
    if match is None:
        raise RuntimeError(out)
    ok, conflict, other, errors, duration, p50, p99 = (int(g) for g in match.groups())
    return Run(ok, conflict, other, errors, duration / 1e6, p50 / 1e3, p99 / 1e3)


def median_run(runs: list[Run], key: str) -> Run:
    ordered = sorted(runs, key=lambda r: getattr(r, key))
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument(
        "--after-redis-flush",
        action="store_true",
        help="only the sold-out rate right after FLUSHDB of the bench's Redis db",
    )
    options = parser.parse_args()
    if options.after_redis_flush:
        after_redis_flush(options)
        return

    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores, shared with the rest)")
    prepare_database()
    import django

    django.setup()
    tokens = Path(tempfile.mkdtemp()) / "tokens.txt"
    seed_players(tokens)
    filled = filled_house()
    sold_out = new_house(total=1, sold=1, title="bench sold out")
    sync_redis()
    server = start_server()
    rows = []
    try:
        warm = new_house(title="bench warm-up")
        sync_redis()
        for mode in ("me", "reserve"):
            wrk(concurrency=32, seconds=3, tokens=tokens, house_id=warm, mode=mode)
        for concurrency in options.concurrency:
            for sold in (0, FILLED):
                runs, oversold = [], 0
                for _ in range(options.runs):
                    house_id = filled if sold else new_house()
                    sync_redis()
                    runs.append(
                        wrk(
                            concurrency=concurrency,
                            seconds=options.duration,
                            tokens=tokens,
                            house_id=house_id,
                            mode="reserve",
                        )
                    )
                    oversold += oversell(house_id)
                reserve = median_run(runs, "ok_per_second")
                soldout = median_run(
                    [
                        wrk(
                            concurrency=concurrency,
                            seconds=options.duration,
                            tokens=tokens,
                            house_id=sold_out,
                            mode="reserve",
                        )
                        for _ in range(options.runs)
                    ],
                    "conflict_per_second",
                )
                me = median_run(
                    [
                        wrk(
                            concurrency=concurrency,
                            seconds=options.duration,
                            tokens=tokens,
                            house_id=sold_out,
                            mode="me",
                        )
                        for _ in range(options.runs)
                    ],
                    "ok_per_second",
                )
                rows.append((concurrency, sold, reserve, soldout, me, oversold))
                print_row(*rows[-1], flush=True)
        race_house = new_house(total=3000, title="bench race")
        sync_redis()
        race = wrk(
            concurrency=max(options.concurrency),
            seconds=options.duration,
            tokens=tokens,
            house_id=race_house,
            mode="reserve",
        )
        print(
            f"\nrace for 3000 tickets at C={max(options.concurrency)}: {race.ok} reserved, "
            f"{race.conflict} sold out, {race.other} other, oversell {oversell(race_house)}"
        )
    finally:
        stop_server(server)
    print_table(rows)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(BENCH_ENV["REDIS_URL"])  # db 12: the bench's own
    try:
        client.flushdb()
    finally:
        client.close()


def after_redis_flush(options: argparse.Namespace) -> None:
    """Sold-out answers/s right after Redis lost every hash, against warm and ``/me/``."""
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores, shared with the rest)")
    prepare_database()
    import django

    django.setup()
    tokens = Path(tempfile.mkdtemp()) / "tokens.txt"
    seed_players(tokens)
    sold_out = new_house(total=1, sold=1, title="bench sold out")
    server = start_server()
    rows = []
    try:
        sync_redis()
        for mode in ("me", "reserve"):
            wrk(concurrency=32, seconds=3, tokens=tokens, house_id=sold_out, mode=mode)
        for concurrency in options.concurrency:

            def measure(mode: str, *, concurrency: int = concurrency) -> Run:
                return wrk(
                    concurrency=concurrency,
                    seconds=options.duration,
                    tokens=tokens,
                    house_id=sold_out,
                    mode=mode,
                )

            def after_flush() -> tuple[Run, Run]:
                sync_redis()
                flush_redis()
                # The flush also empties the token cache: the first window pays for it too;
                # the second (no sync in between) shows the gate alone.
                return measure("reserve"), measure("reserve")

            me = median_run([measure("me") for _ in range(options.runs)], "ok_per_second")
            sync_redis()
            warm = median_run(
                [measure("reserve") for _ in range(options.runs)], "conflict_per_second"
            )
            windows = [after_flush() for _ in range(options.runs)]
            first = median_run([w[0] for w in windows], "conflict_per_second")
            second = median_run([w[1] for w in windows], "conflict_per_second")
            rows.append((concurrency, me, warm, first, second))
            print(
                f"C={concurrency:<3} /me/ {me.ok_per_second:6.0f}/s | sold-out warm "
                f"{warm.conflict_per_second:6.0f}/s | after FLUSHDB: first "
                f"{options.duration} s {first.conflict_per_second:6.0f}/s (p99 "
                f"{first.p99_ms:.1f} ms), next {options.duration} s "
                f"{second.conflict_per_second:6.0f}/s (p99 {second.p99_ms:.1f} ms) | other "
                f"{first.other + second.other}, errors {first.errors + second.errors}",
                flush=True,
            )
    finally:
        stop_server(server)
    print(
        f"\n| C | /me/ req/s | sold-out/s warm | warm / me | after FLUSHDB, first "
        f"{options.duration} s: sold-out/s | / me | next {options.duration} s: sold-out/s "
        "| / me |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for c, me, warm, first, second in rows:
        ratios = [run.conflict_per_second / me.ok_per_second for run in (warm, first, second)]
        print(
            f"| {c} | {me.ok_per_second:.0f} | {warm.conflict_per_second:.0f} | "
            f"{ratios[0]:.2f}x | {first.conflict_per_second:.0f} | {ratios[1]:.2f}x | "
            f"{second.conflict_per_second:.0f} | {ratios[2]:.2f}x |"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def print_row(
    c: int, sold: int, reserve: Run, soldout: Run, me: Run, oversold: int, flush: bool = False
) -> None:
    print(
        f"C={c:<3} sold={sold:<8} reserve {reserve.ok_per_second:7.0f}/s "
        f"(p50 {reserve.p50_ms:5.1f} ms, p99 {reserve.p99_ms:6.1f} ms, other {reserve.other}) | "
        f"sold-out {soldout.conflict_per_second:7.0f}/s (p50 {soldout.p50_ms:5.1f}, "
        f"p99 {soldout.p99_ms:6.1f}) | /me/ {me.ok_per_second:6.0f}/s | oversell {oversold}",
        flush=flush,
    )


def print_table(rows: list) -> None:
    print(
        "\n| C | sold before | reservations/s | p50 ms | p99 ms | sold-out/s | sold-out p99 ms "
        "| sold-out / reserve | /me/ req/s | reserve / me | oversell |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c, sold, reserve, soldout, me, oversold in rows:
        print(
            f"| {c} | {sold:,} | {reserve.ok_per_second:.0f} | {reserve.p50_ms:.1f} | "
            f"{reserve.p99_ms:.1f} | {soldout.conflict_per_second:.0f} | {soldout.p99_ms:.1f} | "
            f"{soldout.conflict_per_second / reserve.ok_per_second:.2f}x | "
            f"{me.ok_per_second:.0f} | {reserve.ok_per_second / me.ok_per_second:.0%} | "
            f"{oversold} |"
        )


if __name__ == "__main__":
    main()
