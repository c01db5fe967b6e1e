"""Interleaved A/B of the reserve hot path: two code trees served side by side. A command.

    BENCH_DATABASE=raffle_bench_x BENCH_PORT=8250 .venv/bin/python bench/reserve_ab.py \\
        /tmp/before /tmp/after [--rounds 12] [--seconds 3] [--concurrency 32] \\
        [--after-env PROMETHEUS_MULTIPROC_DIR=/tmp/prom]

Each tree is a clean export (``git archive <commit> | tar -x -C DIR``) with a
``.venv`` link. Both gunicorns (2 sync workers each, ``reserve_bench.py``'s
settings) run at once on the same database and Redis db 12, on ports
BENCH_PORT and BENCH_PORT + 1; ``wrk`` then alternates between them every few
seconds (A B, B A, A B, ...), reserve on a house with plenty of tickets, then
sold-out answers on a sold-out house. On a machine shared with other work the
load drifts by more than the difference being measured; pairs taken seconds
apart see the same drift, so the median of the per-pair ratios B / A is the
figure, with the spread of those ratios beside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("reserve_bench", HERE / "reserve_bench.py")
bench = importlib.util.module_from_spec(spec)
sys.modules["reserve_bench"] = bench  # its dataclasses look themselves up there
spec.loader.exec_module(bench)  # sets the bench environment (database, Redis db 12, DEBUG=0)


def start(tree: Path, port: int, extra_env: dict[str, str]) -> subprocess.Popen:
    return bench.start_server(tree, port, {**os.environ, **extra_env})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--after-env", action="append", default=[], metavar="KEY=VALUE")
    options = parser.parse_args()
    after_env = dict(item.split("=", 1) for item in options.after_env)
    if "PROMETHEUS_MULTIPROC_DIR" in after_env:
        Path(after_env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

    import django

    bench.prepare_database()
    django.setup()
    tokens = Path(tempfile.mkdtemp()) / "tokens.txt"
    bench.seed_players(tokens)
    plenty = bench.new_house(title="bench ab")
    sold_out = bench.new_house(total=1, sold=1, title="bench ab sold out")
    bench.sync_redis()

    ports = {"A": bench.PORT, "B": bench.PORT + 1}
    servers = {
        "A": start(options.before.resolve(), ports["A"], {}),
        "B": start(options.after.resolve(), ports["B"], after_env),
    }
    results: dict[str, dict[str, list[float]]] = {
        mode: {"A": [], "B": []} for mode in ("reserve", "sold_out")
    }
    try:
        for port in ports.values():  # warm both: connections, prepared statements
            bench.PORT = port
            bench.wrk(
                concurrency=options.concurrency,
                seconds=2,
                tokens=tokens,
                house_id=plenty,
                mode="reserve",
            )
        for round_number in range(options.rounds):
            order = ("A", "B") if round_number % 2 == 0 else ("B", "A")
            for mode, house in (("reserve", plenty), ("sold_out", sold_out)):
                for variant in order:
                    bench.PORT = ports[variant]
                    run = bench.wrk(
                        concurrency=options.concurrency,
                        seconds=options.seconds,
                        tokens=tokens,
                        house_id=house,
                        mode="reserve",
                    )
                    rate = run.ok_per_second if mode == "reserve" else run.conflict_per_second
                    results[mode][variant].append(rate)
    finally:
        for server in servers.values():
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)

    print(f"C={options.concurrency}, {options.rounds} pairs of {options.seconds} s")
    print(f"A={options.before}, B={options.after} {after_env or ''}")
    for mode, by_variant in results.items():
        ratios = [b / a for a, b in zip(by_variant["A"], by_variant["B"], strict=True) if a]
        quartiles = statistics.quantiles(ratios, n=4)
        print(
            f"{mode:>9}: A median {statistics.median(by_variant['A']):6.0f}/s, "
            f"B median {statistics.median(by_variant['B']):6.0f}/s; "
            f"B/A per pair: median {statistics.median(ratios):.3f} "
            f"(quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}, n={len(ratios)})"
        )
    print(f"oversell on the reserve house: {bench.oversell(plenty)}")


if __name__ == "__main__":
    main()
