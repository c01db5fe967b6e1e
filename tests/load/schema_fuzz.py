"""Schema conformance: schemathesis against a running server, as a client author would.

    DEBUG=0 SECURE_SSL_REDIRECT=0 SECRET_KEY=... manage.py runserver 127.0.0.1:8000 --noreload
    .venv/bin/python tests/load/schema_fuzz.py --url http://127.0.0.1:8000 --cases 200

Every schemathesis check (``--checks all``), the coverage, fuzzing and stateful phases,
authenticated as a verified player (``seed_demo``'s alice by default), with
``tests/load/schemathesis.toml`` (hooks and the two documented 422 allowances). Exits 0
only with zero failures and zero errors; prints the case count. The bounded run in
``make test`` is ``tests/core/test_schema_conformance.py``; the figures of the long run are
in ``docs/reliability.md``.

The embedded mode of ``make run`` (SQLite, ``DEBUG=1``, in-process tasks) passes the same
run: an unrouted ``/api/`` URL answers problem JSON there too (docs/reliability.md).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")


@dataclass
class FuzzResult:
    returncode: int
    cases: int
    failures: int
    errors: int
    output: str


def fetch_token(base_url: str, username: str, password: str) -> str:
    request = urllib.request.Request(  # noqa: S310 (http(s) to our own server)
        f"{base_url}/api/v1/auth/token/",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.load(response)["token"]


def run_schemathesis(
    base_url: str,
    token: str,
    *,
    cases: int,
    seed: int = 1,
    workers: int = 1,
    max_time: int | None = None,
    timeout: float | None = None,
    deterministic: bool = False,
) -> FuzzResult:
    """One schemathesis run; ``cases`` is the most per operation and phase.

    ``deterministic`` draws the same cases on every run (hypothesis derandomized); otherwise
    ``seed`` picks them."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/api/v1/schema/",
        "--header",
        f"Authorization: Token {token}",
        "--checks",
        "all",
        "--phases",
        "coverage,fuzzing,stateful",
        "--max-examples",
        str(cases),
        "--seed",
        str(seed),
        *(["--generation-deterministic"] if deterministic else ["--generation-database", "none"]),
        # One worker: CPython 3.11's ast module is not thread-safe ("AST constructor
        # recursion depth mismatch" inside hypothesis when workers describe lambdas at once).
        "--workers",
        str(workers),
        "--no-color",
    ]
    if max_time:
        command += ["--max-time", str(max_time)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = completed.stdout + completed.stderr
    generated = re.search(r"(\d+) generated", output)
    failures = re.search(r"(\d+) (?:unique )?failures?\b", output)
    errors = re.search(r"(\d+) errors?\b", output)
    return FuzzResult(
        returncode=completed.returncode,
        cases=int(generated.group(1)) if generated else 0,
        failures=int(failures.group(1)) if failures else 0,
        errors=int(errors.group(1)) if errors else 0,
        output=output,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="alice")
    parser.add_argument("--password", default="player-demo-password")
    parser.add_argument("--cases", type=int, default=200, help="most cases per operation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-time", type=int, default=None, help="seconds for the whole run")
    args = parser.parse_args()
    token = fetch_token(args.url, args.username, args.password)
    result = run_schemathesis(
        args.url, token, cases=args.cases, seed=args.seed, max_time=args.max_time
    )
    print(result.output)
    print(
        f"schema fuzz: {result.cases} cases, {result.failures} failures, "
        f"{result.errors} errors, exit {result.returncode}"
    )
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
