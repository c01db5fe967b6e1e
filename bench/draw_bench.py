"""Benchmark the pure draw algorithm on a large house. A command, not a test.

    .venv/bin/python bench/draw_bench.py [--tickets 1000000] [--alternates 3]
    .venv/bin/python bench/draw_bench.py --database [--tickets 1000000]   # needs DATABASE_URL

``--database`` runs bench/draw_database_bench.py: the same size of house closed,
frozen and drawn by the server on PostgreSQL (see that module).

Builds N synthetic 24-byte leaves (ticket numbers 1..N, holders from an HMAC as
the server derives them), then times each step of draws.verify as the server
runs it: the Merkle root, one inclusion proof, material + winner/alternates, and
the standalone verifier on the two JSON documents. Prints wall time per step,
the process's peak RSS (resource.getrusage), and in a second, traced pass the
peak memory that merkle_root itself allocates (tracemalloc; slower, so not timed).
No database, no network.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from draws.verify import (
    QUICKNET,
    audit_path,
    draw_material,
    leaf_bytes,
    merkle_root,
    pick_indices,
    verify_documents,
    verify_inclusion,
)

HOUSE_ID = 1
HOLDER_KEY = b"bench-holder-key"
SEED = hashlib.sha256(b"bench seed").hexdigest()
RANDOMNESS = hashlib.sha256(b"bench entropy").hexdigest()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed(label: str, step: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = step()
    elapsed = time.perf_counter() - started
    print(f"{label:<44} {elapsed:8.3f} s   peak RSS {peak_rss_mb():7.1f} MB")
    return result


def synthetic_holders(count: int) -> list[str]:
    """Holders of ~count/3 players, as hex(HMAC(key, "house:user")[:16])."""
    players = max(1, count // 3)
    by_player = [
        hmac.new(HOLDER_KEY, f"{HOUSE_ID}:{user}".encode(), hashlib.sha256).digest()[:16].hex()
        for user in range(players)
    ]
    return [by_player[(number * 7919) % players] for number in range(count)]


def synthetic_leaves(holders: list[str]) -> list[bytes]:
    return [leaf_bytes(number + 1, holder) for number, holder in enumerate(holders)]


def main() -> int:
    if "--database" in sys.argv[1:]:
        # The same house through the server: PostgreSQL, close, freeze and draw.
        from bench.draw_database_bench import main as database_main

        return database_main([arg for arg in sys.argv[1:] if arg != "--database"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--alternates", type=int, default=3)
    arguments = parser.parse_args()
    count = arguments.tickets
    print(f"draw algorithm benchmark: {count:,} tickets, Python {sys.version.split()[0]}")
    print(f"{'start':<44} {'':>10}   peak RSS {peak_rss_mb():7.1f} MB")

    holders = timed("synthetic holders", lambda: synthetic_holders(count))
    leaves = timed("leaf bytes (24 B each)", lambda: synthetic_leaves(holders))
    root = timed("merkle_root", lambda: merkle_root(leaves))
    indices = timed(
        "draw_material + pick_indices",
        lambda: pick_indices(
            draw_material(
                randomness_hex=RANDOMNESS,
                house_id=HOUSE_ID,
                seed_hex=SEED,
                tickets_count=count,
                tickets_root_hex=root.hex(),
            ),
            count,
            arguments.alternates,
        ),
    )
    path = timed("audit_path of the winner", lambda: audit_path(leaves, indices[0]))
    assert verify_inclusion(leaves[indices[0]], indices[0], count, path, root)
    print(f"  root {root.hex()}  winner index {indices[0]}  alternates {indices[1:]}")
    run_verifier(holders, root, indices)
    holders.clear()
    gc.collect()

    tracemalloc.start()
    merkle_root(leaves)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{'merkle_root: peak allocated (tracemalloc)':<44} {traced_peak / 2**20:8.1f} MB")
    leaves_mb = (sys.getsizeof(leaves) + sum(sys.getsizeof(leaf) for leaf in leaves)) / 2**20
    print(f"{'the leaves themselves (list of bytes)':<44} {leaves_mb:8.1f} MB")
    return 0


def run_verifier(holders: list[str], root: bytes, indices: list[int]) -> None:
    """verify_documents on the two section-5 bodies of this draw (manual entropy)."""
    count = len(holders)
    draw = {
        "id": 1,
        "house_id": HOUSE_ID,
        "winning_ticket_number": indices[0] + 1,
        "verification": {
            "algorithm_version": 1,
            "commitment": hashlib.sha256(bytes.fromhex(SEED)).hexdigest(),
            "seed": SEED,
            "tickets_root": root.hex(),
            "tickets_count": count,
            "beacon_chain": QUICKNET.hash,
            "beacon_round": None,
            "beacon_randomness": RANDOMNESS,
            "beacon_signature": "",
            "entropy_source": "manual",
            "winning_index": indices[0],
            "winning_ticket_number": indices[0] + 1,
            "alternates": [index + 1 for index in indices[1:]],
        },
    }
    tickets = {
        "draw_id": 1,
        "house_id": HOUSE_ID,
        "tickets_root": root.hex(),
        "tickets_count": count,
        "leaves": [
            {"ticket_number": number + 1, "holder": holders[number]} for number in range(count)
        ],
    }
    report = timed(
        "verify_documents (the standalone verifier)", lambda: verify_documents(draw, tickets)
    )
    assert report["ok"], report


if __name__ == "__main__":
    sys.exit(main())
