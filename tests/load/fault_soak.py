"""Fault soak: the real stack under mixed player traffic while Redis, the worker and the
database connections fail, then end-state checks. A command, not a test.

    .venv/bin/python tests/load/fault_soak.py --duration 180

Builds its own world: database ``raffle_soak`` (dropped and created), a private
``redis-server`` on port 6397 (no persistence; cache and Celery broker), then
gunicorn (2 workers), one Celery worker (2 processes) and Celery beat, as in the
``Procfile``. 24 player threads (httpx) list houses, reserve with an
``Idempotency-Key``, check out (mostly ``tok_ok``, some ``tok_declined`` /
``tok_timeout``), poll, cancel, abandon, list their reservations and tickets,
and replay earlier requests with the same key and body. Three faults are
injected at 1/4, 1/2 and 3/4 of the run: the private Redis restarted empty
(then ``manage.py sync_inventory`` as ops would), the Celery worker's main
process SIGKILLed (a new worker started a few seconds later, as a supervisor
would), every PostgreSQL connection of ``raffle_soak`` terminated. After the
traffic stops the system drains (the periodic jobs are run by hand), the
end-state checks run, and a summary is printed; the exit status is non-zero
when a check fails. Every process it started and the private Redis are stopped
on exit, also on Ctrl-C.

It never imports the project's apps: it talks HTTP to gunicorn, runs
``manage.py`` commands and reads PostgreSQL with plain SQL. Only 127.0.0.1.
See ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.executable).parent
PYTHON = str(BIN / "python")
DB_NAME = "raffle_soak"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_SOAK = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
DEMO_PASSWORD = "player-demo-password"  # public demo credentials of seed_demo
HOT_HOUSE = "Seaside villa in Cascais"  # demo houses of seed_demo, resized by SQL
BIG_HOUSE = "Townhouse near the Vondelpark"
DRAW_HOUSE = "Alpine chalet"
FINAL = {"completed", "failed", "refunded", "cancelled", "expired"}
CHECKOUT_STUCK_AFTER_SECONDS = 60  # recovery bound of the soak world (env, docs/payments.md)
TASK_MAX_RUNTIME_SECONDS = 20  # hard limit 50 s < the recovery bound; visibility timeout 80 s
RESERVATION_TTL_SECONDS = 60  # abandoned reservations expire during the run


# --------------------------------------------------------------------------- the record


@dataclass
class Sample:
    t: float  # wall clock at send
    endpoint: str
    status: int | str  # HTTP status, or "ERR" for a transport error
    ms: float
    code: str = ""
    request_id: str = ""
    # A 503 with Retry-After is retried once, as API.md asks of clients: did that work?
    retried_ok: bool | None = None

    @property
    def answered(self) -> float:
        """Wall clock when the answer (or the transport error) arrived."""
        return self.t + self.ms / 1000

    @property
    def is_error(self) -> bool:
        return self.status == "ERR" or self.status >= 500


@dataclass
class Replay:
    kind: str
    original_t: float
    t: float
    ok: bool
    reason: str = ""


@dataclass
class Checkout:
    reservation_id: str
    token: str
    t: float  # wall clock of the checkout POST
    accepted: bool
    seen: str = ""  # last status the client saw


@dataclass
class Event:
    name: str
    t: float
    done: float = 0.0
    note: str = ""


@dataclass
class Record:
    lock: threading.Lock = field(default_factory=threading.Lock)
    samples: list[Sample] = field(default_factory=list)
    replays: list[Replay] = field(default_factory=list)
    checkouts: list[Checkout] = field(default_factory=list)
    faults: list[Event] = field(default_factory=list)
    incidents: list[Event] = field(default_factory=list)  # unexpected process exits
    sold_out_at: float | None = None
    hot_house_id: int = 0
    draw_house_id: int = 0  # sales end part-way: closed, frozen and drawn during the run
    draw_house_ends: float = 0.0

    def add(self, item: object) -> None:
        with self.lock:
            if isinstance(item, Sample):
                self.samples.append(item)
            elif isinstance(item, Replay):
                self.replays.append(item)
            elif isinstance(item, Checkout):
                self.checkouts.append(item)


# --------------------------------------------------------------------------- the stack


class Stack:
    """The processes of the soak world; each in its own session so its children stop too."""

    def __init__(
        self,
        *,
        workdir: Path,
        port: int,
        redis_port: int,
        record: Record,
        gateway_failure_percent: int = 0,
        gateway_timeout_percent: int = 0,
    ) -> None:
        self.workdir, self.port, self.redis_port, self.record = workdir, port, redis_port, record
        self.app_root = ROOT  # or an exported commit (--ref)
        self.failed_commands: Counter[str] = Counter()
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.base = f"http://127.0.0.1:{port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "CELERY"))},
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
            "REDIS_URL": self.redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "DEBUG": "0",
            "SECRET_KEY": "soak-" + secrets.token_urlsafe(60),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "LOG_LEVEL": "INFO",
            "PAYMENT_GATEWAY": "sandbox",
            # draws never reach the network: staff enter the entropy (the soak's staff thread)
            "DRAW_ENTROPY_SOURCE": "manual",
            # the sandbox's injected faults (payments/gateways/sandbox.py): every charge call
            # fails (nothing charged) or charges then times out with these odds
            "SANDBOX_CHARGE_FAILURE_PERCENT": str(gateway_failure_percent),
            "SANDBOX_CHARGE_TIMEOUT_PERCENT": str(gateway_timeout_percent),
            "RESERVATION_TTL_SECONDS": str(RESERVATION_TTL_SECONDS),
            "CHECKOUT_STUCK_AFTER_SECONDS": str(CHECKOUT_STUCK_AFTER_SECONDS),
            "CELERY_TASK_MAX_RUNTIME_SECONDS": str(TASK_MAX_RUNTIME_SECONDS),
            # rate limits stay on; the set-up registers and logs in more players than the
            # default per-address limits allow from one address
            "RATE_LIMIT_REGISTER_PER_IP": "1000/h",
            "RATE_LIMIT_TOKEN_PER_IP": "1000/m",
            "PYTHONUNBUFFERED": "1",
        }
        self.commands = {
            "web": [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "10",
            ],
            "worker": [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
            ],
            "beat": [str(BIN / "celery"), "-A", "config", "beat", "--loglevel", "INFO"],
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis_proc: subprocess.Popen | None = None
        self.lock = threading.RLock()
        self.supervising = threading.Event()
        self.stopping = False
        self.watchdog: threading.Thread | None = None

    # -- processes

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115  (closed with the process)
        log.write(f"\n==== {datetime.now().isoformat()} start {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            cwd=self.app_root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return proc

    def start(self, name: str) -> None:
        with self.lock:
            self.procs[name] = self._spawn(name, self.commands[name])

    def start_redis(self) -> None:
        self.redis_proc = self._spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--maxmemory-policy",
                "noeviction",
            ],
        )
        client = redis.Redis(port=self.redis_port, socket_timeout=0.2)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"private redis on port {self.redis_port} did not start")

    def stop_redis(self) -> None:
        if self.redis_proc and self.redis_proc.poll() is None:
            self.redis_proc.terminate()
            try:
                self.redis_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.redis_proc.kill()
                self.redis_proc.wait()

    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # the session this script created for it

    def stop(self, name: str, timeout: float = 15) -> None:
        with self.lock:
            proc = self.procs.pop(name, None)
        if proc is None:
            return
        self._signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(proc, signal.SIGKILL)
            proc.wait()
        self._signal_group(proc, signal.SIGKILL)  # children left behind, if any

    def group_alive(self, pgid: int) -> list[int]:
        alive = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    alive.append(int(entry.name))
        return alive

    # -- supervisor: a stack process that exits on its own is an incident; restart it

    def start_watchdog(self) -> None:
        self.supervising.set()
        self.watchdog = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        self.watchdog.start()

    def _watch(self) -> None:
        while not self.stopping:
            time.sleep(0.5)
            if not self.supervising.is_set():
                continue
            with self.lock:
                dead = [(n, p) for n, p in self.procs.items() if p.poll() is not None]
            for name, proc in dead:
                now = time.time()
                self.record.incidents.append(
                    Event(f"{name} exited unexpectedly (rc={proc.returncode})", now)
                )
                log(f"!! {name} exited on its own (rc={proc.returncode}); restarting in 3 s")
                self._signal_group(proc, signal.SIGKILL)
                time.sleep(3)
                with self.lock:
                    if self.stopping or self.procs.get(name) is not proc:
                        continue
                    self.start(name)
                self.record.incidents[-1].done = time.time()

    def wait_http(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/health/live/", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /health/live/")

    def manage(self, *args: str, timeout: float = 180) -> tuple[int, str]:
        proc = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=self.app_root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            self.failed_commands[args[0]] += 1
        with open(self.workdir / "manage.log", "a") as out:
            out.write(f"==== {datetime.now().isoformat()} manage.py {' '.join(args)} ")
            out.write(f"-> {proc.returncode}\n{output}\n")
        return proc.returncode, output

    def cleanup(self) -> None:
        self.stopping = True
        self.supervising.clear()
        for name in ("beat", "worker", "web"):
            with suppress(Exception):
                self.stop(name)
        with suppress(Exception):
            self.stop_redis()


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


@contextmanager
def sql(url: str = PG_SOAK) -> Iterator[psycopg.Cursor]:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn, conn.cursor() as cur:
        yield cur


def scalar(query: str, params: tuple = ()) -> object:
    with sql() as cur:
        cur.execute(query, params)
        row = cur.fetchone()
        return row[0] if row else None


# --------------------------------------------------------------------------- set-up


def build_world(stack: Stack, players: int, hot_tickets: int) -> tuple[list[str], int, int]:
    """Database, migrations, demo data, soak players, houses; returns tokens and house ids."""
    with sql(PG_ADMIN) as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{DB_NAME}"')
    for args in (("migrate", "--no-input", "-v", "0"), ("seed_demo",)):
        rc, output = stack.manage(*args)
        if rc != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{output}")
    with sql() as cur:
        # the hot house sells out part-way; the big one never does
        cur.execute(
            "UPDATE lottery_house SET total_tickets = %s, max_tickets_per_purchase = 10, "
            "max_tickets_per_user = NULL WHERE title = %s AND tickets_sold = 0 "
            "AND tickets_reserved = 0 RETURNING id",
            (hot_tickets, HOT_HOUSE),
        )
        hot_id = cur.fetchone()[0]
        cur.execute(
            "UPDATE lottery_house SET max_tickets_per_purchase = 10, max_tickets_per_user = NULL "
            "WHERE title = %s RETURNING id",
            (BIG_HOUSE,),
        )
        big_id = cur.fetchone()[0]
    rc, output = stack.manage("sync_inventory")
    if rc != 0:
        raise RuntimeError(f"sync_inventory failed:\n{output}")

    names = ["alice", "bob"] + [f"soak{i:02d}" for i in range(1, players - 1)]
    passwords = {"alice": DEMO_PASSWORD, "bob": DEMO_PASSWORD}
    with httpx.Client(base_url=stack.base, timeout=30) as http:
        for name in names[2:]:
            passwords[name] = f"soak-{secrets.token_urlsafe(16)}"
            response = http.post(
                "/api/v1/auth/register/",
                json={
                    "username": name,
                    "email": f"{name}@soak.example",
                    "password": passwords[name],
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"register {name}: {response.status_code} {response.text}")
        with sql() as cur:
            cur.execute(
                "UPDATE lottery_playerprofile SET is_verified = true WHERE user_id IN "
                "(SELECT id FROM auth_user WHERE username LIKE 'soak%%')"
            )
        tokens = []
        for name in names:
            response = http.post(
                "/api/v1/auth/token/", json={"username": name, "password": passwords[name]}
            )
            if response.status_code != 200:
                raise RuntimeError(f"token {name}: {response.status_code} {response.text}")
            tokens.append(response.json()["token"])
    return tokens, hot_id, big_id


# --------------------------------------------------------------------------- traffic


def _code(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        with suppress(ValueError, AttributeError):
            return str(response.json().get("code", ""))
    return ""


def _comparable(content: bytes) -> object:
    """A response body without the per-request id, for comparing original and replay."""
    try:
        body = json.loads(content)
    except ValueError:
        return content
    if isinstance(body, dict):
        body.pop("request_id", None)
    return body


@dataclass
class Sent:
    kind: str
    path: str
    key: str
    body: bytes
    status: int
    content: bytes
    t: float
    replayed_content: bytes | None = None  # the stored body, from the first replay


class Player(threading.Thread):
    def __init__(
        self,
        index: int,
        base: str,
        token: str,
        hot_id: int,
        big_id: int,
        record: Record,
        stop: threading.Event,
        seed: int,
    ) -> None:
        super().__init__(name=f"player-{index}", daemon=True)
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Token {token}"}, timeout=15
        )
        self.hot_id, self.big_id, self.record, self.stop = hot_id, big_id, record, stop
        self.rng = random.Random(seed * 1000 + index)
        self.sent: list[Sent] = []
        self.reservation_ids: list[str] = []
        self.watched: set[int] = set()
        self.draw_ids: list[int] = []

    # -- one request, measured

    def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        key: str = "",
        is_retry: bool = False,
    ) -> httpx.Response | None:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if key:
            headers["Idempotency-Key"] = key
        t, start = time.time(), time.perf_counter()
        try:
            response = self.http.request(method, path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.record.add(
                Sample(t, endpoint, "ERR", (time.perf_counter() - start) * 1000, type(exc).__name__)
            )
            return None
        sample = Sample(
            t,
            endpoint,
            response.status_code,
            (time.perf_counter() - start) * 1000,
            _code(response),
            response.headers.get("X-Request-ID", ""),
        )
        self.record.add(sample)
        retry_after = response.headers.get("Retry-After")
        if response.status_code == 503 and retry_after and not is_retry:
            # What a well-behaved client does with 503 + Retry-After (capped to keep pace).
            time.sleep(min(float(retry_after), 2.0))
            again = self.call(endpoint, method, path, body=body, key=key, is_retry=True)
            sample.retried_ok = again is not None and again.status_code < 500
            return again
        return response

    # -- behaviour

    def run(self) -> None:
        while not self.stop.is_set():
            roll = self.rng.random()
            try:
                if roll < 0.08:
                    self.call("GET houses", "GET", "/api/v1/houses/?status=active")
                elif roll < 0.11:
                    house_id = self.rng.choice((self.hot_id, self.big_id))
                    self.call("GET house", "GET", f"/api/v1/houses/{house_id}/")
                elif roll < 0.56:
                    self.purchase()
                elif roll < 0.64:
                    self.call("GET reservations", "GET", "/api/v1/reservations/")
                elif roll < 0.70:
                    self.call("GET me/tickets", "GET", "/api/v1/me/tickets/")
                elif roll < 0.81:
                    self.replay()
                elif roll < 0.87:
                    self.watchlist()
                elif roll < 0.92:
                    self.draws()
                elif self.reservation_ids:
                    rid = self.rng.choice(self.reservation_ids)
                    self.call("GET reservation", "GET", f"/api/v1/reservations/{rid}/")
            except Exception as exc:  # a harness bug must not silently stop a player
                log(f"player {self.name}: {type(exc).__name__}: {exc}")
            time.sleep(self.rng.uniform(0.05, 0.3))

    def purchase(self) -> None:
        # players keep trying the hot house after it sells out (tickets come back), less often
        hot = self.rng.random() < (0.6 if self.record.sold_out_at is None else 0.3)
        house_id = self.hot_id if hot else self.big_id
        if not hot and time.time() < self.record.draw_house_ends and self.rng.random() < 0.25:
            house_id = self.record.draw_house_id
        body = json.dumps({"house_id": house_id, "quantity": self.rng.randint(1, 3)}).encode()
        key = uuid.uuid4().hex
        t = time.time()
        response = self.call("POST reserve", "POST", "/api/v1/reservations/", body=body, key=key)
        if response is None:
            return
        if response.status_code == 201:  # a stored outcome (Redis-only sold_out is not stored)
            self.sent.append(
                Sent(
                    "reserve",
                    "/api/v1/reservations/",
                    key,
                    body,
                    response.status_code,
                    response.content,
                    t,
                )
            )
        if response.status_code == 409 and _code(response) == "sold_out" and hot:
            with self.record.lock:
                if self.record.sold_out_at is None:
                    self.record.sold_out_at = t
        if response.status_code != 201:
            return
        rid = response.json()["id"]
        self.reservation_ids.append(rid)
        roll = self.rng.random()
        if roll < 0.08:
            self.call("POST cancel", "POST", f"/api/v1/reservations/{rid}/cancel/", body=b"{}")
            return
        if roll < 0.14:
            return  # abandoned: left to expire
        roll = self.rng.random()
        token = "tok_ok" if roll < 0.84 else "tok_declined" if roll < 0.95 else "tok_timeout"
        path = f"/api/v1/reservations/{rid}/checkout/"
        body = json.dumps({"payment_token": token}).encode()
        key = uuid.uuid4().hex
        t = time.time()
        response = self.call("POST checkout", "POST", path, body=body, key=key)
        accepted = response is not None and response.status_code == 202
        checkout = Checkout(rid, token, t, accepted)
        self.record.add(checkout)
        if accepted:
            self.sent.append(
                Sent("checkout", path, key, body, response.status_code, response.content, t)
            )
        if not accepted:
            return
        if self.rng.random() < 0.05:  # a double click, at once
            self.replay(self.sent[-1])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not self.stop.is_set():
            time.sleep(0.3)
            polled = self.call("GET reservation", "GET", f"/api/v1/reservations/{rid}/")
            if polled is not None and polled.status_code == 200:
                checkout.seen = polled.json().get("status", "")
                if checkout.seen in FINAL:
                    return

    def watchlist(self) -> None:
        roll = self.rng.random()
        if roll < 0.5:
            self.call("GET watchlist", "GET", "/api/v1/watchlist/")
            return
        house_id = self.rng.choice((self.hot_id, self.big_id))
        if house_id in self.watched and roll < 0.75:
            response = self.call("DELETE watchlist", "DELETE", f"/api/v1/watchlist/{house_id}/")
            if response is not None and response.status_code == 204:
                self.watched.discard(house_id)
            return
        body = json.dumps({"house_id": house_id}).encode()
        response = self.call("POST watchlist", "POST", "/api/v1/watchlist/", body=body)
        if response is not None and response.status_code in (200, 201):
            self.watched.add(house_id)

    def draws(self) -> None:
        if self.draw_ids and self.rng.random() < 0.6:
            draw_id = self.rng.choice(self.draw_ids)
            if self.rng.random() < 0.8:
                self.call("GET draw", "GET", f"/api/v1/draws/{draw_id}/")
            else:
                self.call("GET draw tickets", "GET", f"/api/v1/draws/{draw_id}/tickets/")
            return
        response = self.call("GET draws", "GET", "/api/v1/draws/")
        if response is not None and response.status_code == 200:
            self.draw_ids = [d["id"] for d in response.json().get("results", []) if "id" in d]

    def replay(self, sent: Sent | None = None) -> None:
        if sent is None:
            candidates = [s for s in self.sent if time.time() - s.t > 1]
            if not candidates:
                return
            sent = self.rng.choice(candidates)
        t = time.time()
        response = self.call(
            f"POST {sent.kind} (replay)", "POST", sent.path, body=sent.body, key=sent.key
        )
        if response is None:
            return  # a transport error is counted with the requests, not as a mismatch
        reason = ""
        if response.status_code != sent.status:
            reason = f"status {sent.status} -> {response.status_code} {_code(response)}".strip()
        elif response.headers.get("Idempotent-Replayed") != "true":
            reason = "no Idempotent-Replayed: true"
        elif _comparable(response.content) != _comparable(sent.content):
            reason = "body differs from the original"
        elif sent.replayed_content is not None and response.content != sent.replayed_content:
            reason = "stored body changed between replays"
        if reason:
            reason = f"{sent.kind}: {reason}"
        if not reason and sent.replayed_content is None:
            sent.replayed_content = response.content
        self.record.add(Replay(sent.kind, sent.t, t, not reason, reason))


class Staff(Player):
    """Staff conduct each draw once its ticket list is frozen (manual entropy), under load."""

    ENTROPY = "5f" * 32

    def run(self) -> None:
        conducted: set[int] = set()
        while not self.stop.is_set():
            response = self.call("GET draws (staff)", "GET", "/api/v1/draws/")
            if response is not None and response.status_code == 200:
                for draw in response.json().get("results", []):
                    if draw["status"] == "waiting_entropy" and draw["id"] not in conducted:
                        body = json.dumps({"entropy": self.ENTROPY, "source": "soak dice"})
                        done = self.call(
                            "POST draw conduct (staff)",
                            "POST",
                            f"/api/v1/draws/{draw['id']}/conduct/",
                            body=body.encode(),
                        )
                        if done is not None and done.status_code == 200:
                            conducted.add(draw["id"])
                            log(f"staff conducted draw {draw['id']} of house {draw['house_id']}")
            self.stop.wait(5)


def open_draw_house(sales_seconds: float) -> tuple[int, float]:
    """seed_demo's paused Alpine chalet (activated once: it has its seed) back on sale, small,
    no minimum participation, its sales ending part-way through the traffic."""
    with sql() as cur:
        cur.execute(
            "UPDATE lottery_house SET status = 'active', total_tickets = 2000, "
            "max_tickets_per_purchase = 10, max_tickets_per_user = NULL, "
            "min_participation_percent = 0, sales_end_at = now() + make_interval(secs => %s) "
            "WHERE title = %s AND status = 'paused' AND tickets_sold = 0 RETURNING id",
            (sales_seconds + 5, DRAW_HOUSE),
        )
        house_id = cur.fetchone()[0]
    return house_id, time.time() + sales_seconds + 5


def staff_token(base: str) -> str:
    """seed_demo's staff account (public demo credentials)."""
    response = httpx.post(
        f"{base}/api/v1/auth/token/",
        json={"username": "admin", "password": "admin-demo-password"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["token"]


# --------------------------------------------------------------------------- faults


def fault_redis_restart(stack: Stack) -> str:
    stack.stop_redis()
    stack.start_redis()
    rc, output = stack.manage("sync_inventory")
    return f"redis restarted empty; sync_inventory rc={rc}: {output.splitlines()[-1:]}"


def fault_kill_worker(stack: Stack, restart_after: float) -> str:
    with stack.lock:
        proc = stack.procs.pop("worker")  # the supervisor stops watching it while it is down
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(restart_after)
    leftovers = stack.group_alive(proc.pid)
    stack._signal_group(proc, signal.SIGKILL)  # a supervisor kills the whole unit
    with stack.lock:
        stack.start("worker")
    return (
        f"worker main pid {proc.pid} SIGKILLed; {len(leftovers)} pool process(es) still alive "
        f"after {restart_after:.0f} s (killed); new worker started"
    )


def fault_terminate_db(stack: Stack) -> str:
    with sql() as cur:
        cur.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (DB_NAME,),
        )
        killed = cur.fetchone()[0]
    return f"{killed} PostgreSQL connection(s) of {DB_NAME} terminated"


# --------------------------------------------------------------------------- drain and checks


def ticket_table() -> str | None:
    with sql() as cur:
        for name in ("lottery_ticket", "purchases_ticket"):
            cur.execute("SELECT to_regclass(%s)", (name,))
            if cur.fetchone()[0] is not None:
                return name
    return None


def stuck_counts() -> dict[str, int]:
    with sql() as cur:
        cur.execute(
            "SELECT count(*) FILTER (WHERE status = 'processing'), "
            "count(*) FILTER (WHERE status = 'pending' AND expires_at < now()), "
            "count(*) FILTER (WHERE status = 'refund_pending') FROM reservations_reservation"
        )
        processing, expired_pending, refund_pending = cur.fetchone()
    return {
        "processing": processing,
        "pending past expiry": expired_pending,
        "refund_pending": refund_pending,
    }


def drain(stack: Stack, timeout: float) -> tuple[float, dict[str, int]]:
    """Run the periodic jobs by hand until nothing is stuck or the timeout passes."""
    started = time.monotonic()
    while True:
        for command in (
            "expire_reservations",
            "requeue_stranded_checkouts",
            "recover_stuck_checkouts",
            "retry_refunds",
        ):
            stack.manage(command)
        stack.manage("relay_outbox")
        counts = stuck_counts()
        waited = time.monotonic() - started
        log(f"drain {waited:5.0f} s: {counts}")
        if counts["processing"] == 0 and counts["pending past expiry"] == 0:
            return waited, counts
        if waited > timeout:
            return waited, counts
        time.sleep(10)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def end_checks(stack: Stack, record: Record) -> list[Check]:
    checks: list[Check] = []
    rc, output = stack.manage("check_integrity")
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    telling = [ln for ln in lines if "integrity" in ln or "Error" in ln] or lines or ["-"]
    checks.append(Check("manage.py check_integrity exits 0", rc == 0, telling[-1][:160]))

    counts = stuck_counts()
    checks.append(
        Check(
            "no reservation processing or pending past expiry",
            counts["processing"] == 0 and counts["pending past expiry"] == 0,
            str(counts),
        )
    )

    with sql() as cur:
        cur.execute(
            "SELECT count(*) FROM payments_payment p JOIN reservations_reservation r "
            "ON r.id = p.reservation_id WHERE p.status = 'succeeded' "
            "AND r.status NOT IN ('completed', 'refund_pending', 'refunded')"
        )
        orphan_payments = cur.fetchone()[0]
        # sandbox ledger: a succeeded charge must belong to a succeeded payment, or be refunded
        cur.execute(
            "SELECT count(*) FROM payments_sandboxledgerentry c "
            "LEFT JOIN payments_payment p ON p.idempotency_key = c.idempotency_key "
            "LEFT JOIN reservations_reservation r ON r.id = p.reservation_id "
            "WHERE c.kind = 'charge' AND c.status = 'succeeded' "
            "AND NOT EXISTS (SELECT 1 FROM payments_sandboxledgerentry f WHERE f.kind = 'refund' "
            "  AND f.status = 'succeeded' AND f.charge_id = c.id) "
            "AND (p.id IS NULL OR p.status <> 'succeeded' "
            "  OR r.status NOT IN ('completed', 'refund_pending', 'refunded'))"
        )
        orphan_ledger = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM (SELECT p.reservation_id FROM payments_payment p "
            "JOIN payments_sandboxledgerentry c ON c.idempotency_key = p.idempotency_key "
            "AND c.kind = 'charge' AND c.status = 'succeeded' "
            "GROUP BY p.reservation_id HAVING count(*) > 1) d"
        )
        double_ledger = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM (SELECT reservation_id FROM payments_payment "
            "WHERE status = 'succeeded' GROUP BY reservation_id HAVING count(*) > 1) d"
        )
        double_payments = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM payments_sandboxledgerentry c WHERE kind = 'charge' "
            "AND status = 'succeeded' AND NOT EXISTS (SELECT 1 FROM payments_payment p "
            "WHERE p.idempotency_key = c.idempotency_key)"
        )
        unmatched = cur.fetchone()[0]
    checks.append(
        Check(
            "no orphan charge",
            orphan_payments == 0 and orphan_ledger == 0,
            f"{orphan_payments} succeeded payment(s) on an unfinished/failed reservation, "
            f"{orphan_ledger} unrefunded ledger charge(s) without a completed purchase "
            f"({unmatched} with no payment row)",
        )
    )
    checks.append(
        Check(
            "no double charge",
            double_payments == 0 and double_ledger == 0,
            f"{double_payments} reservation(s) with 2+ succeeded payments, "
            f"{double_ledger} with 2+ succeeded ledger charges",
        )
    )

    table = ticket_table()
    if table is None:
        checks.append(Check("tickets match purchases", False, "no ticket table found"))
    else:
        with sql() as cur:
            cur.execute(
                "SELECT count(*) FROM reservations_reservation r LEFT JOIN LATERAL "  # noqa: S608
                f"(SELECT count(*) AS n FROM {table} t WHERE t.reservation_id = r.id "
                "AND t.status = 'active') t ON true "
                "WHERE (r.status IN ('completed', 'refund_pending') AND t.n <> r.quantity) "
                "OR (r.status NOT IN ('completed', 'refund_pending') AND t.n <> 0)"
            )
            bad = cur.fetchone()[0]
        checks.append(
            Check(
                "tickets match purchases",
                bad == 0,
                f"{bad} reservation(s) whose active {table} rows differ from their quantity",
            )
        )

    replays = record.replays
    bad_replays = [r for r in replays if not r.ok]
    reasons = Counter(r.reason for r in bad_replays)
    checks.append(
        Check(
            "every replay identical (status, body, Idempotent-Replayed)",
            not bad_replays and bool(replays),
            f"{len(replays) - len(bad_replays)}/{len(replays)} identical"
            + (f"; {dict(reasons.most_common(3))}" if reasons else ""),
        )
    )

    five = Counter(
        s.status
        for s in record.samples
        if s.status == "ERR" or (s.status >= 500 and not s.retried_ok)
    )
    unavailable = [s for s in record.samples if s.retried_ok]
    checks.append(
        Check(
            "zero 5xx (and zero transport errors) left to clients: a 503 with Retry-After"
            " counts only if its one retry failed too",
            not five,
            (", ".join(f"{k}: {v}" for k, v in sorted(five.items(), key=str)) or "none")
            + f"; {len(unavailable)} x 503 + Retry-After, each retried once successfully",
        )
    )

    with sql() as cur:
        cur.execute(
            "SELECT d.task_name, "
            "CASE WHEN d.task_name = 'checkout.process' THEN EXISTS (SELECT 1 FROM "
            "  reservations_reservation r WHERE r.id::text = d.args->>0 "
            "  AND r.status NOT IN ('pending', 'processing')) "
            "WHEN d.task_name = 'refunds.attempt' THEN EXISTS (SELECT 1 FROM payments_refund f "
            "  WHERE f.id::text = d.args->>0 AND f.status = 'succeeded') "
            "ELSE false END AS done FROM core_deadletter d WHERE d.status = 'open'"
        )
        letters = cur.fetchall()
    done = Counter(name for name, is_done in letters if is_done)
    checks.append(
        Check(
            "no open dead letter whose work is done",
            not done,
            f"{sum(done.values())} of {len(letters)} open letter(s) done"
            + (f" {dict(done)}" if done else ""),
        )
    )

    checks.append(
        Check(
            "no stack process exited on its own",
            not record.incidents,
            "; ".join(i.name for i in record.incidents) or "none",
        )
    )
    failed = {k: v for k, v in stack.failed_commands.items() if k != "check_integrity"}
    checks.append(
        Check(
            "every manage.py command (set-up, faults, drain) exited 0",
            not failed,
            ", ".join(f"{k} failed {v}x" for k, v in failed.items()) or "all exited 0",
        )
    )
    return checks


# --------------------------------------------------------------------------- report


def pct(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def recovery(record: Record, fault: Event, until: float) -> tuple[str, str, int]:
    """Seconds from the fault to the next reservation made (201) and to the first completed
    checkout submitted after it; 5xx/transport errors answered between it and ``until``."""
    ok = [
        s.t
        for s in record.samples
        if s.t >= fault.t and s.endpoint == "POST reserve" and s.status == 201
    ]
    after = {c.reservation_id: c.t for c in record.checkouts if c.accepted and c.t >= fault.t}
    first_done = None
    if after:
        with sql() as cur:
            cur.execute(
                "SELECT min(updated_at) FROM reservations_reservation "
                "WHERE status = 'completed' AND id = ANY(%s::uuid[])",
                (list(after),),
            )
            first_done = cur.fetchone()[0]
    errors = sum(1 for s in record.samples if fault.t <= s.answered < until and s.is_error)
    return (
        f"{min(ok) - fault.t:.1f}" if ok else "never",
        f"{first_done.timestamp() - fault.t:.1f}" if first_done else "never",
        errors,
    )


FAULT_WINDOW_AFTER = 5.0  # seconds after an injection ended still counted as its window


def fault_window_rows(record: Record) -> tuple[list[str], list[list[object]]]:
    """Requests answered, error rates and latency inside each fault's window and outside all."""
    windows = [(f.name, f.t, f.done + FAULT_WINDOW_AFTER) for f in record.faults]

    def row(label: str, samples: list[Sample], seconds: float) -> list[object]:
        n = len(samples)
        errors = sum(1 for s in samples if s.is_error)
        unavailable = sum(1 for s in samples if s.status == 503)
        ms = [s.ms for s in samples]
        return [
            label,
            f"{seconds:.1f}",
            n,
            f"{n / seconds:.1f}" if seconds else "-",
            f"{errors} ({100 * errors / n:.2f} %)" if n else "0",
            unavailable,
            f"{pct(ms, 0.5):.0f}",
            f"{pct(ms, 0.99):.0f}",
        ]

    rows = []
    for name, start, end in windows:
        inside = [s for s in record.samples if start <= s.t < end]
        rows.append(row(name, inside, end - start))
    outside = [s for s in record.samples if not any(a <= s.t < b for _, a, b in windows)]
    if record.samples:
        span = max(s.answered for s in record.samples) - min(s.t for s in record.samples)
        rest = span - sum(b - a for _, a, b in windows)
        rows.append(row("no fault (rest of the run)", outside, max(rest, 0.001)))
    headers = ["window", "s", "requests", "req/s", "5xx+ERR", "503", "p50 ms", "p99 ms"]
    return headers, rows


def gateway_fault_summary(logs: Path, args: object) -> str:
    """What the sandbox's injected faults did, from the worker's log."""
    text = ""
    with suppress(OSError):
        text = (logs / "worker.log").read_text(errors="replace")
    unavailable = text.count("sandbox: gateway unavailable")
    timed_out = text.count("timed out after charging (injected)")
    retries = text.count("Retry in")
    return (
        f"Gateway faults (SANDBOX_CHARGE_FAILURE_PERCENT={args.gateway_failure_percent}, "
        f"SANDBOX_CHARGE_TIMEOUT_PERCENT={args.gateway_timeout_percent}): "
        f"{unavailable} charge calls failed, {timed_out} timed out after charging; "
        f"{retries} task retries scheduled (all tasks; worker log)"
    )


def report(
    record: Record,
    t0: float,
    checks: list[Check],
    drained: tuple[float, dict],
    args: object,
    stack_logs: Path | None = None,
) -> str:
    out = []
    by_endpoint: dict[str, list[Sample]] = defaultdict(list)
    for s in record.samples:
        by_endpoint[s.endpoint].append(s)
    rows = []
    seconds = max(args.duration, 1.0)
    for endpoint in sorted(by_endpoint):
        samples = by_endpoint[endpoint]
        statuses = Counter(str(s.status) for s in samples)
        ms = [s.ms for s in samples]
        rows.append(
            [
                endpoint,
                len(samples),
                f"{len(samples) / seconds:.2f}",
                " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
                f"{pct(ms, 0.5):.0f}",
                f"{pct(ms, 0.99):.0f}",
            ]
        )
    all_ms = [s.ms for s in record.samples]
    rows.append(
        [
            "all",
            len(record.samples),
            f"{len(record.samples) / seconds:.1f}",
            "",
            f"{pct(all_ms, 0.5):.0f}",
            f"{pct(all_ms, 0.99):.0f}",
        ]
    )
    out.append("Requests (req/s over the traffic period; status:count; latency in ms)")
    out.append(table(["endpoint", "n", "req/s", "statuses", "p50", "p99"], rows))

    codes = Counter(
        f"{s.endpoint} {s.status} {s.code}"
        for s in record.samples
        if s.code and (s.status == "ERR" or s.status >= 400)
    )
    if codes:
        out.append("\nError codes: " + ", ".join(f"{k}: {v}" for k, v in codes.most_common(12)))
    fives = [s for s in record.samples if s.status == "ERR" or s.status >= 500]
    for s in fives[:10]:
        out.append(
            f"  {s.t - t0:7.1f} s  {s.endpoint}  {s.status} {s.code} request_id={s.request_id}"
        )
    if len(fives) > 10:
        out.append(f"  ... {len(fives) - 10} more")

    with sql() as cur:
        cur.execute(
            "SELECT status, count(*) FROM reservations_reservation GROUP BY status ORDER BY 1"
        )
        statuses = cur.fetchall()
        cur.execute(
            "SELECT tickets_sold, tickets_reserved, total_tickets FROM lottery_house WHERE id = %s",
            (record.hot_house_id,),
        )
        sold, reserved, total = cur.fetchone()
    by_token = defaultdict(Counter)
    final = dict(statuses)
    with sql() as cur:
        cur.execute(
            "SELECT id::text, status || coalesce('/' || nullif(failure_code, ''), ''), "
            "updated_at FROM reservations_reservation "
            "WHERE id = ANY(%s::uuid[])",
            ([c.reservation_id for c in record.checkouts],),
        )
        rows_by_id = {rid: (st, ts) for rid, st, ts in cur.fetchall()}
        cur.execute("SELECT status, count(*) FROM core_deadletter GROUP BY 1 ORDER BY 1")
        letters = dict(cur.fetchall())
    db_status = {rid: st for rid, (st, _) in rows_by_id.items()}
    # checkout POST -> the commit that completed it (tok_ok only: the others wait by design)
    to_completed = [
        (rows_by_id[c.reservation_id][1].timestamp() - c.t) * 1000
        for c in record.checkouts
        if c.accepted and c.token == "tok_ok" and db_status.get(c.reservation_id) == "completed"
    ]
    for c in record.checkouts:
        by_token[c.token][
            db_status.get(c.reservation_id, "?") if c.accepted else "not accepted"
        ] += 1
    out.append("\nCheckouts (final status in the database, by payment token)")
    out.append(
        table(
            ["token", "checkouts", "outcomes"],
            [
                [tok, sum(n.values()), " ".join(f"{k}:{v}" for k, v in sorted(n.items()))]
                for tok, n in sorted(by_token.items())
            ],
        )
    )
    out.append(
        f"tok_ok checkout POST -> completed: p50 {pct(to_completed, 0.5):.0f} ms, "
        f"p99 {pct(to_completed, 0.99):.0f} ms, max {max(to_completed, default=0):.0f} ms"
    )
    out.append(f"dead letters by status: {letters or 'none'}")
    out.append(
        f"completed: {final.get('completed', 0)}, failed: {final.get('failed', 0)}, "
        f"all reservations by status: {dict(statuses)}"
    )
    sold_out = (
        f"first sold_out at {record.sold_out_at - t0:.1f} s" if record.sold_out_at else "never"
    )
    out.append(f"hot house: {sold}/{total} sold, {reserved} reserved; {sold_out}")
    with sql() as cur:
        cur.execute(
            "SELECT h.title, h.status, h.tickets_sold, d.status, d.winning_ticket_number "
            "FROM draws_draw d JOIN lottery_house h ON h.id = d.house_id ORDER BY d.id"
        )
        draws = cur.fetchall()
    for title, house_status, house_sold, draw_status, winner in draws:
        out.append(
            f"draw of {title} ({house_status}, {house_sold} sold): {draw_status}, "
            f"winning ticket {winner}"
        )
    replays = record.replays
    for label, pick in (
        ("after the hot house sold out", lambda r: record.sold_out_at and r.t > record.sold_out_at),
        (
            "after the Redis restart, of requests made before it",
            lambda r: (
                record.faults
                and r.t > record.faults[0].done > r.original_t
                and record.faults[0].name.startswith("redis")
            ),
        ),
    ):
        chosen = [r for r in replays if pick(r)]
        good = sum(r.ok for r in chosen)
        out.append(f"replays {label}: {good}/{len(chosen)} identical")

    out.append("\nFaults")
    rows = []
    ends = [f.t for f in record.faults[1:]] + [float("inf")]
    for fault, until in zip(record.faults, ends, strict=True):
        ok_after, done_after, errors = recovery(record, fault, until)
        rows.append(
            [
                f"{fault.t - t0:.1f}",
                fault.name,
                f"{fault.done - fault.t:.1f}",
                ok_after,
                done_after,
                errors,
                fault.note,
            ]
        )
    out.append(
        table(
            [
                "at s",
                "fault",
                "took s",
                "next 201 reserve s",
                "next completed checkout s",
                "5xx/ERR until next fault",
                "note",
            ],
            rows,
        )
    )
    for incident in record.incidents:
        out.append(f"  incident at {incident.t - t0:.1f} s: {incident.name}")
    out.append(
        f"\nWhile each fault lasted (from injection to {FAULT_WINDOW_AFTER:.0f} s after it "
        "ended) against the rest of the run; raw answers, before any client retry"
    )
    out.append(table(*fault_window_rows(record)))
    if stack_logs is not None:
        out.append("\n" + gateway_fault_summary(stack_logs, args))

    waited, counts = drained
    out.append(f"\nDrain: {waited:.0f} s until {counts}")
    out.append("\nEnd-state checks")
    out.append(
        table(
            ["check", "result", "detail"],
            [[c.name, "PASS" if c.ok else "FAIL", c.detail] for c in checks],
        )
    )
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def git_commit(ref: str | None) -> str:
    """The commit that runs: ``ref``, or HEAD and how many files of the working tree differ
    from it (others edit the same tree)."""
    with suppress(Exception):
        if ref:
            return f"{git('rev-parse', '--short', ref)} (exported, clean)"
        head = git("rev-parse", "--short", "HEAD")
        dirty = len(git("status", "--porcelain").splitlines())
        return f"{head} (working tree, {dirty} file(s) differ)" if dirty else head
    return "?"


def tree_state() -> str:
    """A fingerprint of the working tree, to tell whether it changed during the run."""
    with suppress(Exception):
        return git("rev-parse", "HEAD") + git("status", "--porcelain") + git("diff")
    return ""


def export_ref(ref: str, workdir: Path) -> Path:
    """``git archive`` of ``ref`` into the work directory: a tree nobody edits during the run."""
    target = workdir / "app"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main(argv: list[str] | None = None, defaults: dict[str, object] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds of traffic")
    parser.add_argument("--players", type=int, default=24)
    parser.add_argument("--port", type=int, default=8097, help="gunicorn on 127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6397, help="the private redis-server")
    parser.add_argument(
        "--hot-tickets", type=int, default=0, help="hot house size (default: 1 per second of run)"
    )
    parser.add_argument("--worker-down", type=float, default=5, help="seconds before restart")
    parser.add_argument("--drain-timeout", type=float, default=240)
    parser.add_argument("--no-faults", action="store_true", help="a baseline run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ref",
        default=None,
        help="run the stack from this commit, exported with git archive (default: the working "
        "tree as it is; other engineers' edits during the run then change the code under it)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the log directory")
    parser.add_argument(
        "--gateway-failure-percent",
        type=int,
        default=0,
        help="sandbox charge calls that fail, nothing charged (SANDBOX_CHARGE_FAILURE_PERCENT)",
    )
    parser.add_argument(
        "--gateway-timeout-percent",
        type=int,
        default=0,
        help="sandbox charge calls that charge, then time out (SANDBOX_CHARGE_TIMEOUT_PERCENT)",
    )
    parser.set_defaults(**(defaults or {}))
    args = parser.parse_args(argv)
    hot_tickets = args.hot_tickets or max(40, int(args.duration))

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    workdir = Path(tempfile.mkdtemp(prefix="fault_soak_"))
    record = Record()
    stack = Stack(
        workdir=workdir,
        port=args.port,
        redis_port=args.redis_port,
        record=record,
        gateway_failure_percent=args.gateway_failure_percent,
        gateway_timeout_percent=args.gateway_timeout_percent,
    )
    stop = threading.Event()
    failed = True
    commit = git_commit(args.ref)
    tree_before = tree_state()
    try:
        log(f"commit {commit}; logs in {workdir}")
        if args.ref:
            stack.app_root = export_ref(args.ref, workdir)
        stack.start_redis()
        stack.start("web")
        tokens_houses = None
        stack.wait_http()
        tokens_houses = build_world(stack, args.players, hot_tickets)
        tokens, hot_id, big_id = tokens_houses
        record.hot_house_id = hot_id
        stack.start("worker")
        stack.start("beat")
        stack.start_watchdog()
        record.draw_house_id, record.draw_house_ends = open_draw_house(0.4 * args.duration)
        log(f"world ready: {len(tokens)} players, hot house {hot_id} ({hot_tickets} tickets)")

        players = [
            Player(i, stack.base, tok, hot_id, big_id, record, stop, args.seed)
            for i, tok in enumerate(tokens)
        ]
        staff = staff_token(stack.base)
        players.append(Staff(len(players), stack.base, staff, hot_id, big_id, record, stop, 0))
        t0 = time.time()
        for player in players:
            player.start()
        down = args.worker_down
        faults = [
            (0.25, "redis restart (+ sync_inventory)", lambda: fault_redis_restart(stack)),
            (0.50, "worker SIGKILL (+ restart)", lambda: fault_kill_worker(stack, down)),
            (0.75, "terminate DB connections", lambda: fault_terminate_db(stack)),
        ]
        for fraction, name, inject in [] if args.no_faults else faults:
            time.sleep(max(0.0, t0 + fraction * args.duration - time.time()))
            event = Event(name, time.time())
            log(f"fault: {name}")
            event.note = inject()
            event.done = time.time()
            record.faults.append(event)
            log(f"  {event.note} ({event.done - event.t:.1f} s)")
        while time.time() < t0 + args.duration:
            time.sleep(1)
        log("traffic stops; waiting for the players' last polls")
        stop.set()
        for player in players:
            player.join(timeout=30)
        drained = drain(stack, args.drain_timeout)
        stack.supervising.clear()
        checks = end_checks(stack, record)
        summary = report(record, t0, checks, drained, args, stack_logs=workdir)
        failed = not all(c.ok for c in checks)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        stop.set()
        stack.cleanup()
        if not args.keep_logs and not failed:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        f"Fault soak: {args.duration:.0f} s, {len(tokens)} players, commit {commit}, gateway "
        f"failing {args.gateway_failure_percent} % / timing out {args.gateway_timeout_percent} %"
    )
    print(summary)
    if not args.ref and tree_state() != tree_before:
        print(
            "\nWARNING: the working tree changed during the run (other engineers' edits); the "
            "processes may have run different code. Use --ref HEAD for a stable run."
        )
    logs = workdir if failed or args.keep_logs else "removed"
    print(f"\nRESULT: {'FAIL' if failed else 'PASS'}   (logs: {logs})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
