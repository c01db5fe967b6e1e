# ruff: noqa: S603  (a local benchmark: it runs psql and its own measuring process)
"""Close and draw one house with N sold tickets on PostgreSQL: time and peak memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/raffle_bench_draw \\
    REDIS_URL=redis://127.0.0.1:6379/12 \\
    .venv/bin/python bench/draw_bench.py --database [--tickets 1000000]

(``bench/draw_bench.py --database`` runs this module.) Set-up, not measured: the
database named in DATABASE_URL is dropped and re-created, migrated, and one
activated house gets N active tickets held by 1,000 players (SQL
``generate_series``). Measured, in a fresh process so its peak RSS is the draw's
own: one ``run_draws`` pass (close the house, freeze the list: read N tickets,
holders, leaves, Merkle root, store; fix the round) and a staff ``conduct_draw``
with manual entropy (material, winner, alternates, house drawn); then a player's
inclusion proof of the first, middle and last ticket, against a ``SELECT 1`` round
trip in the same process. Prints wall time per step and the measuring process's
peak RSS. Not a test; no network.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PLAYERS = 1000
ENTROPY = "5f" * 32


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def report(label: str, seconds: float) -> None:
    print(f"{label:<44} {seconds:8.3f} s   peak RSS {peak_rss_mb():7.1f} MB")


def recreate_database(url: str) -> None:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    base = ["psql", "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 5432)]
    base += ["-U", parsed.username or "postgres", "-d", "postgres", "-q", "-c"]
    subprocess.run([*base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True)
    subprocess.run([*base, f'CREATE DATABASE "{name}"'], check=True)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DRAW_ENTROPY_SOURCE"] = "manual"  # never the network
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def seed_house(tickets: int) -> int:
    """One activated house, sold out, its sales over; 1,000 players each hold N/1000."""
    from datetime import timedelta
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from lottery.models import House
    from lottery.services import change_house_status
    from payments.models import Payment
    from reservations.models import Reservation

    now = timezone.now()
    house = House.objects.create(
        title="Bench house",
        city="Lisbon",
        property_value=Decimal("500000"),
        ticket_price=Decimal("1.00"),
        total_tickets=tickets,
        max_tickets_per_purchase=tickets,
        sales_start_at=now - timedelta(days=30),
        sales_end_at=now + timedelta(days=1),
    )
    change_house_status(house_id=house.pk, to_status=House.Status.ACTIVE)
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bench{i}") for i in range(PLAYERS)
    )
    share = tickets // PLAYERS
    quantities = [share + (1 if i < tickets % PLAYERS else 0) for i in range(PLAYERS)]
    reservations = Reservation.objects.bulk_create(
        Reservation(
            house=house,
            user=user,
            quantity=quantity,
            unit_price=Decimal("1.00"),
            total_price=Decimal(quantity),
            currency="EUR",
            status=Reservation.Status.COMPLETED,
            expires_at=now,
        )
        for user, quantity in zip(users, quantities, strict=True)
        if quantity
    )
    payments = Payment.objects.bulk_create(
        Payment(
            reservation=reservation,
            amount=reservation.total_price,
            currency="EUR",
            gateway="sandbox",
            idempotency_key=str(reservation.pk),
            status=Payment.Status.SUCCEEDED,
        )
        for reservation in reservations
    )
    # Ticket n belongs to purchase (n - 1) // share, as consecutive blocks would.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_purchase"
            " (slot int, reservation uuid, user_id int, payment int)"
        )
        cursor.executemany(
            "INSERT INTO bench_purchase VALUES (%s, %s, %s, %s)",
            [
                (slot, reservation.pk, reservation.user_id, payment.pk)
                for slot, (reservation, payment) in enumerate(
                    zip(reservations, payments, strict=True)
                )
            ],
        )
        cursor.execute(
            """
            INSERT INTO purchases_ticket
                (house_id, ticket_number, owner_id, reservation_id, payment_id, status, issued_at)
            SELECT %s, n, p.user_id, p.reservation, p.payment, 'active', now()
            FROM generate_series(1, %s) AS n
            JOIN bench_purchase p ON p.slot = LEAST((n - 1) / %s, %s)
            """,
            [house.pk, tickets, max(share, 1), len(reservations) - 1],
        )
        cursor.execute("ANALYZE purchases_ticket")
    House.objects.filter(pk=house.pk).update(
        tickets_sold=tickets,
        next_ticket_number=tickets + 1,
        sales_end_at=now - timedelta(seconds=1),
    )
    return house.pk


def measure(house_id: int) -> None:
    """Runs in its own process: one pass (close + freeze), then the draw itself."""
    setup_django()
    from django.contrib.auth import get_user_model

    from draws.models import Draw
    from draws.services.passes import run_due
    from draws.services.running import conduct_draw

    staff = get_user_model().objects.create(username="bench-staff", is_staff=True)
    baseline = peak_rss_mb()
    started = time.perf_counter()
    summary = run_due()
    freeze_seconds = time.perf_counter() - started
    draw = Draw.objects.get(house_id=house_id)
    report("close + freeze (one run_draws pass)", freeze_seconds)
    started = time.perf_counter()
    done = conduct_draw(draw_id=draw.pk, actor=staff, entropy=ENTROPY, source="bench")
    draw_seconds = time.perf_counter() - started
    report("conduct (material, winner, alternates)", draw_seconds)
    report("total", freeze_seconds + draw_seconds)
    measure_proofs(house_id, done.tickets_count)
    print(
        f"peak RSS of the process: {peak_rss_mb():.1f} MB (after Django set-up: {baseline:.1f} MB)"
    )
    print(
        f"tickets {done.tickets_count}, root {done.tickets_root[:16]}..., winner "
        f"{done.winning_ticket_number}, alternates {done.alternates}, pass {summary['freeze']}"
    )


def measure_proofs(house_id: int, tickets: int) -> None:
    """A player's inclusion proof (the selector behind GET /me/tickets/{id}/proof/), by the
    database's own round trip: ``SELECT 1`` timed the same way is the in-run reference."""
    from django.db import connection

    from draws.selectors import ticket_proof
    from purchases.models import Ticket

    def timed(step: object, repeat: int = 5) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        return sorted(times)[repeat // 2]

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    reference = timed(select_one, 51)
    for number in (1, tickets // 2, tickets):
        ticket_id, owner_id = (
            Ticket.objects.filter(house_id=house_id, ticket_number=number)
            .values_list("pk", "owner_id")
            .get()
        )
        seconds = timed(partial(ticket_proof, user_id=owner_id, ticket_id=ticket_id))
        print(
            f"proof of ticket {number:>9,}: median of 5 {seconds * 1000:9.1f} ms"
            f"  = {seconds / reference:9.0f} x SELECT 1 ({reference * 1000:.3f} ms)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--measure-house", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_house:
        measure(args.measure_house)
        return 0
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        parser.error("set DATABASE_URL to a postgres:// database (it is dropped and re-created)")
    recreate_database(url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DRAW_ENTROPY_SOURCE": "manual"},
    )
    setup_django()
    started = time.perf_counter()
    house_id = seed_house(args.tickets)
    elapsed = time.perf_counter() - started
    print(f"set-up: {args.tickets:,} sold tickets in {elapsed:.1f} s (not measured)")
    subprocess.run(
        [sys.executable, __file__, "--measure-house", str(house_id)], cwd=ROOT, check=True
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
