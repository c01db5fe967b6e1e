# ruff: noqa: S603, S607, S608, S108  (a local benchmark: it starts pip, psql, gunicorn, celery)
"""pretix's paid-order creation through its REST API, next to our checkout benchmark.

    .venv/bin/python bench/pretix_bench.py --clients 8 32 --seconds 15 [--with-checkout]

pretix is installed from PyPI into its own venv (``--venv``, default
``/tmp/pretix-venv``; created with ``pip install pretix gunicorn`` when missing),
never into ours. It gets its own PostgreSQL database (``--database``, default
``raffle_bench_pretix``, migrated once and reused; ``--fresh`` re-creates it) and
a Redis db (``--redis-url``, default db 11, flushed) for its cache, locks and
Celery broker, and runs like our stack: gunicorn with
2 sync workers and one Celery worker with 2 processes, ``debug=off``, no static
files (the API needs none, so no Node). ``bench/pretix_seed.py`` (run in
pretix's venv) creates organizer, live event, a 5.00 EUR item in a
10,000,000-seat quota and an API token. C closed-loop clients each repeat
``POST /api/v1/organizers/bench/events/bench/orders/`` with ``status: "p"``
(one position, payment provider ``manual``): a paid order in one request, which
is what our reserve + checkout + wait does. The clients share one asyncio event
loop in a child process (``bench/http_client.py``), as in checkout_bench. Printed:
paid orders/s, p50/p99 of the request, errors, and CPU ms per paid order of each
component (gunicorn, Celery, postgres, redis, the clients, the rest of the machine).

``--with-checkout`` then runs ``bench/checkout_bench.py`` with the same C and
seconds (its own stack, database ``raffle_bench_checkout``), so both figures
come from the same session; pass its extra flags after ``--``.
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
from pathlib import Path

from checkout_bench import CpuMeter, show_cpu
from http_client import ClientProcess, Connection

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """[pretix]
instance_name=bench
url=http://127.0.0.1:{port}
currency=EUR
datadir={data}
registration=off

[database]
backend=postgresql
name={database}
user=postgres
host=127.0.0.1
port=5432

[redis]
location={redis}

[celery]
broker={redis}
backend={redis}

[django]
debug=off
"""


def ensure_venv(venv: Path) -> None:
    if (venv / "bin" / "gunicorn").exists() and (venv / "bin" / "celery").exists():
        return
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip", "wheel"], check=True)
    subprocess.run([*pip, "pretix", "gunicorn"], check=True)


def psql(sql: str) -> str:
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def prepare(
    venv: Path, data: Path, port: int, fresh: bool, database: str, redis_url: str
) -> tuple[dict[str, str], int, str]:
    data.mkdir(parents=True, exist_ok=True)
    config = data / "pretix.cfg"
    config.write_text(CONFIG.format(port=port, data=data, database=database, redis=redis_url))
    env = {
        **os.environ,
        "PRETIX_CONFIG_FILE": str(config),
        "DJANGO_SETTINGS_MODULE": "pretix.settings",
    }
    exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'") == "1"
    if fresh or not exists:
        psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        psql(f'CREATE DATABASE "{database}"')
    python = str(venv / "bin" / "python")
    # Migrating a fresh database takes about two minutes; an up-to-date one, seconds.
    subprocess.run([python, "-m", "pretix", "migrate", "-v", "0"], cwd=data, env=env, check=True)
    seeded = subprocess.run(
        [python, str(ROOT / "bench" / "pretix_seed.py")],
        cwd=data,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    item_id, token = seeded.stdout.strip().splitlines()[-1].split()
    return env, int(item_id), token


async def buyers(
    base: str, token: str, item_id: int, clients: int, seconds: float
) -> tuple[list[float], int, float]:
    """C closed-loop clients in one event loop (the client process), each repeating a paid order.

    Returns each paid order's request time in ms, the error count and the seconds taken.
    """
    path = "/api/v1/organizers/bench/events/bench/orders/"
    started = time.monotonic()
    stop_at = started + seconds
    latencies: list[float] = []
    errors = 0

    async def buyer() -> None:
        nonlocal errors
        http = Connection(base, {"Authorization": f"Token {token}"}, timeout=30)
        while time.monotonic() < stop_at:
            sent = time.monotonic()
            try:
                answer = await http.post(
                    path,
                    json={
                        "email": f"{uuid.uuid4().hex[:12]}@example.org",
                        "locale": "en",
                        "sales_channel": "web",
                        "status": "p",
                        "payment_provider": "manual",
                        "positions": [{"item": item_id}],
                    },
                )
                paid = answer.status == 201 and answer.json()["status"] == "p"
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, KeyError):
                paid = False
            if paid:
                latencies.append((time.monotonic() - sent) * 1000)
            else:
                errors += 1
        http.close()

    await asyncio.gather(*(buyer() for _ in range(clients)))
    return latencies, errors, time.monotonic() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_round(
    clients_process: ClientProcess,
    meter: CpuMeter | None,
    base: str,
    token: str,
    item_id: int,
    clients: int,
    seconds: float,
) -> dict:
    if meter:
        meter.start()
    latencies, errors, elapsed = clients_process.run(buyers, base, token, item_id, clients, seconds)
    return {
        "clients": clients,
        "paid": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "errors": errors,
        "cpu": meter.stop() if meter else {},
    }


def wait_until_up(base: str, token: str) -> None:
    deadline = time.monotonic() + 60
    request = urllib.request.Request(  # noqa: S310  (our own server)
        f"{base}/api/v1/organizers/", headers={"Authorization": f"Token {token}"}
    )
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise SystemExit("pretix did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--repeat", type=int, default=1, help="rounds per C; median shown")
    parser.add_argument("--port", type=int, default=8152)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/pretix-venv"))
    parser.add_argument("--data", type=Path, default=Path("/tmp/pretix-data"))
    parser.add_argument("--fresh", action="store_true", help="re-create pretix's database")
    parser.add_argument("--database", default="raffle_bench_pretix", help="pretix's database")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/11", help="pretix's Redis db (flushed)"
    )
    parser.add_argument("--with-checkout", action="store_true")
    parser.add_argument("checkout_args", nargs="*", help="after --: flags for checkout_bench")
    args = parser.parse_args()

    ensure_venv(args.venv)
    env, item_id, token = prepare(
        args.venv, args.data, args.port, args.fresh, args.database, args.redis_url
    )
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    bin_dir = args.venv / "bin"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    web = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "pretix.wsgi", "--bind", f"127.0.0.1:{args.port}", "-w", "2"],
        cwd=args.data,
        env=env,
        **quiet,
    )
    worker = subprocess.Popen(
        [
            *(str(bin_dir / "celery"), "-A", "pretix.celery_app", "worker", "--concurrency", "2"),
            *("--without-gossip", "--without-mingle", "-l", "WARNING"),
        ],
        cwd=args.data,
        env=env,
        **quiet,
    )
    base = f"http://127.0.0.1:{args.port}"
    clients_process = ClientProcess()
    roots = {"web": web.pid, "worker": worker.pid, "clients": clients_process.pid}
    meter = CpuMeter(
        roots,
        database=args.database,
        sessions=lambda: int(
            psql(f"SELECT sessions FROM pg_stat_database WHERE datname = '{args.database}'")
        ),
    )
    try:
        wait_until_up(base, token)
        run_round(clients_process, None, base, token, item_id, 2, 3)  # warm-up
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("pretix: paid orders through POST .../orders/ (status p)")
        print(
            f"{'clients':>7} {'paid':>6} {'orders/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
        )
        for clients in args.clients:
            rounds = [
                run_round(clients_process, meter, base, token, item_id, clients, args.seconds)
                for _ in range(args.repeat)
            ]
            r = sorted(rounds, key=lambda r: r["per_second"])[args.repeat // 2]
            print(
                f"{r['clients']:>7} {r['paid']:>6} {r['per_second']:>9.1f} "
                f"{r['p50_ms']:>7.0f} {r['p99_ms']:>7.0f} {r['errors']:>6}",
                flush=True,
            )
            show_cpu(r["cpu"], r["paid"], "paid order", tuple(roots))
    finally:
        clients_process.close()
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            process.wait(timeout=30)
    if args.with_checkout:
        print("ours: bench/checkout_bench.py", flush=True)
        clients = [str(c) for c in args.clients]
        subprocess.run(
            [
                *(sys.executable, str(ROOT / "bench" / "checkout_bench.py"), "--clients", *clients),
                *("--seconds", str(args.seconds), "--repeat", str(args.repeat)),
                *args.checkout_args,
            ],
            cwd=ROOT,
            env={
                "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/raffle_bench_checkout",
                "REDIS_URL": "redis://127.0.0.1:6379/11",
                **os.environ,
            },
            check=True,
        )


if __name__ == "__main__":
    main()
