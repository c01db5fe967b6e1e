"""Draw algorithm version 1 and its standalone verifier (DRAWS.md, byte for byte).

This one file is both the rule the server runs and the program anyone can run:

    python draws/verify.py --draw DRAW.json --tickets TICKETS.json

It needs the standard library and py-ecc (BLS12-381) only: nothing from Django
or the project, so it runs in a fresh virtualenv with ``pip install py-ecc``.
Hex is lowercase everywhere; anything else is refused as malformed.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and not sys.flags.safe_path:
    # Run as a script, draws/ is first on sys.path: a draws/selectors.py or the like
    # would shadow the standard library module of that name.
    del sys.path[0]

import argparse
import hashlib
import hmac
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

ALGORITHM_VERSION = 1

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_HOLDER_BYTES = 16
_HASH_BYTES = 32
_SIGNATURE_BYTES = 48  # a compressed G1 point
_PUBLIC_KEY_BYTES = 96  # a compressed G2 point
_BEACON_DST = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
_SCHEME = "bls-unchained-g1-rfc9380"
_WINNER_TAG = b"winner"
_CHUNK = 1 << 14  # nodes hashed per batch: fast list comprehensions, small transient lists


@dataclass(frozen=True)
class Chain:
    hash: str
    public_key: str
    genesis_time: int
    period: int
    scheme: str


# drand quicknet (League of Entropy mainnet), as served at /{hash}/info.
QUICKNET = Chain(
    hash="52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
    public_key=(
        "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c"
        "8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb"
        "5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a"
    ),
    genesis_time=1692803367,
    period=3,
    scheme=_SCHEME,
)


def _hex_bytes(value: object, length: int, what: str) -> bytes:
    """Strict lowercase hex of exactly ``length`` bytes (no spaces, no 0x, no uppercase)."""
    try:
        raw = bytes.fromhex(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raw = b""
    if len(raw) != length or raw.hex() != value:  # refuses case, spaces and length at once
        raise ValueError(f"{what} must be {2 * length} lowercase hex characters")
    return raw


def _int(value: object, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}")
    return value


# -- 2. Frozen ticket list -----------------------------------------------------------------


def leaf_bytes(ticket_number: int, holder_hex: str) -> bytes:
    """ticket_number as 8-byte unsigned big-endian || the 16 raw bytes of holder."""
    if type(ticket_number) is not int or not 0 <= ticket_number < 1 << 64:
        raise ValueError("ticket_number must be an integer that fits in 8 unsigned bytes")
    return ticket_number.to_bytes(8, "big") + _hex_bytes(holder_hex, _HOLDER_BYTES, "holder")


def _leaf_hashes(leaves: Sequence[bytes]) -> bytearray:
    """SHA-256(0x00 || leaf) of every leaf, packed 32 bytes apart in one buffer."""
    count = len(leaves)
    buffer = bytearray(_HASH_BYTES * count)
    sha256, leaf_prefix = hashlib.sha256, _LEAF_PREFIX
    for first in range(0, count, _CHUNK):
        chunk = leaves[first : first + _CHUNK]
        digests = b"".join([sha256(leaf_prefix + leaf).digest() for leaf in chunk])
        buffer[first * _HASH_BYTES : first * _HASH_BYTES + len(digests)] = digests
    return buffer


def _fold_level(buffer: bytearray, width: int) -> int:
    """Hash one level of ``width`` nodes into the next, in place; returns the new width.

    Pairs (0,1), (2,3), ... become SHA-256(0x01 || left || right); an odd last node
    moves up unchanged. Built bottom-up this way the tree equals RFC 6962's split at
    the largest power of two below n. Parent i is written where child 2i was read,
    chunk by chunk, so one buffer serves every level.
    """
    sha256, node_prefix = hashlib.sha256, _NODE_PREFIX
    pairs = width // 2
    pair_bytes = 2 * _HASH_BYTES
    for first in range(0, pairs, _CHUNK):
        last = min(pairs, first + _CHUNK)
        children = bytes(buffer[first * pair_bytes : last * pair_bytes])
        digests = b"".join(
            [
                sha256(node_prefix + children[offset : offset + pair_bytes]).digest()
                for offset in range(0, len(children), pair_bytes)
            ]
        )
        buffer[first * _HASH_BYTES : last * _HASH_BYTES] = digests
    if width % 2:
        odd = (width - 1) * _HASH_BYTES
        buffer[pairs * _HASH_BYTES : (pairs + 1) * _HASH_BYTES] = buffer[odd : odd + _HASH_BYTES]
    return pairs + width % 2


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash of the leaves (at least one)."""
    if not leaves:
        raise ValueError("a tree needs at least one leaf")
    return _root(_leaf_hashes(leaves), len(leaves))


def audit_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 §2.1.1 audit path of leaf ``index``: sibling node hashes, bottom-up."""
    if not 0 <= index < len(leaves):
        raise ValueError("index outside the tree")
    return _path(_leaf_hashes(leaves), len(leaves), index)


def node_root(nodes: Sequence[bytes]) -> bytes:
    """The root over node hashes already computed, e.g. the roots of aligned subtrees.

    The roots of the subtrees of 2**h leaves starting at multiples of 2**h (the
    last one possibly smaller) are the tree's level h: folding them gives
    ``merkle_root`` of all the leaves.
    """
    if not nodes:
        raise ValueError("a tree needs at least one node")
    return _root(_node_buffer(nodes), len(nodes))


def node_audit_path(nodes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of node ``index`` up from ``nodes`` (one level of the tree) to the root.

    A leaf's path is its path inside its aligned subtree, then its subtree's
    path over the subtree roots.
    """
    if not 0 <= index < len(nodes):
        raise ValueError("index outside the tree")
    return _path(_node_buffer(nodes), len(nodes), index)


def _node_buffer(nodes: Sequence[bytes]) -> bytearray:
    if any(len(node) != _HASH_BYTES for node in nodes):
        raise ValueError("a node hash is 32 bytes")
    return bytearray(b"".join(nodes))


def _root(buffer: bytearray, width: int) -> bytes:
    while width > 1:
        width = _fold_level(buffer, width)
    return bytes(buffer[:_HASH_BYTES])


def _path(buffer: bytearray, width: int, position: int) -> list[bytes]:
    path = []
    while width > 1:
        sibling = position ^ 1
        if sibling < width:  # the odd last node has no sibling at this level
            path.append(bytes(buffer[sibling * _HASH_BYTES : (sibling + 1) * _HASH_BYTES]))
        width = _fold_level(buffer, width)
        position //= 2
    return path


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 6962 §2.1.1 inclusion check (the algorithm of RFC 9162 §2.1.3.2)."""
    if not (0 <= index < tree_size) or len(root) != _HASH_BYTES:
        return False
    node, last = index, tree_size - 1
    running = hashlib.sha256(_LEAF_PREFIX + bytes(leaf)).digest()
    for sibling in path:
        if last == 0 or len(sibling) != _HASH_BYTES:
            return False
        if node & 1 or node == last:
            running = hashlib.sha256(_NODE_PREFIX + bytes(sibling) + running).digest()
            while not node & 1 and node != 0:
                node >>= 1
                last >>= 1
        else:
            running = hashlib.sha256(_NODE_PREFIX + running + bytes(sibling)).digest()
        node >>= 1
        last >>= 1
    return last == 0 and hmac.compare_digest(running, root)


# -- 3. Public randomness ------------------------------------------------------------------


def round_at_or_after(unix_time: float, chain: Chain = QUICKNET) -> int:
    """The first round whose time genesis + (round - 1) * period is at least unix_time."""
    elapsed = Fraction(unix_time) - chain.genesis_time  # exact, even for float input
    if elapsed <= 0:
        return 1
    return 1 + math.ceil(elapsed / chain.period)


@lru_cache(maxsize=1)
def load_bls() -> None:
    """Import py_ecc without keeping the recursion limit it raises for the whole process.

    py_ecc's ``__init__`` sets ``sys.setrecursionlimit(100000)``; in a web process that
    would let a deeply nested JSON body recurse far enough to exhaust the C stack. Its
    BLS verification runs within the default limit.
    """
    limit = sys.getrecursionlimit()
    try:
        import py_ecc  # noqa: F401
    finally:
        sys.setrecursionlimit(limit)


@lru_cache(maxsize=8)
def _public_key_point(public_key_hex: str) -> Any:
    load_bls()
    from py_ecc.bls.g2_primitives import subgroup_check
    from py_ecc.bls.point_compression import decompress_G2

    raw = _hex_bytes(public_key_hex, _PUBLIC_KEY_BYTES, "public key")
    point = decompress_G2((int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big")))
    if not subgroup_check(point):
        raise ValueError("public key is not in G2")
    return point


def verify_beacon_signature(round_number: int, signature_hex: str, chain: Chain = QUICKNET) -> bool:
    """True only for a valid BLS signature of exactly this round under the chain's key."""
    if isinstance(round_number, bool) or not isinstance(round_number, int):
        return False
    if not isinstance(signature_hex, str) or not isinstance(chain, Chain):
        return False
    return _verify_beacon_signature(round_number, signature_hex, chain)


@lru_cache(maxsize=256)  # a pairing costs about half a second; a verdict never changes
def _verify_beacon_signature(round_number: int, signature_hex: str, chain: Chain) -> bool:
    load_bls()
    from py_ecc.bls.g2_primitives import is_inf, subgroup_check
    from py_ecc.bls.hash_to_curve import hash_to_G1
    from py_ecc.bls.point_compression import decompress_G1
    from py_ecc.optimized_bls12_381 import FQ12, G2, final_exponentiate, neg, pairing

    try:
        if chain.scheme != _SCHEME or not 1 <= round_number < 1 << 64:
            return False
        raw = _hex_bytes(signature_hex, _SIGNATURE_BYTES, "signature")
        signature = decompress_G1(int.from_bytes(raw, "big"))
        if is_inf(signature) or not subgroup_check(signature):
            return False
        public_key = _public_key_point(chain.public_key)
        message = hashlib.sha256(round_number.to_bytes(8, "big")).digest()
        hashed = hash_to_G1(message, _BEACON_DST, hashlib.sha256)
        # e(signature, g2) == e(H(m), pk)  <=>  e(signature, g2) * e(H(m), -pk) == 1
        product = pairing(G2, signature, final_exponentiate=False) * pairing(
            neg(public_key), hashed, final_exponentiate=False
        )
        return final_exponentiate(product) == FQ12.one()
    except Exception:  # any malformed input is simply not a valid signature
        return False


def beacon_randomness(signature_hex: str) -> str:
    """hex(SHA-256(signature bytes))."""
    return hashlib.sha256(_hex_bytes(signature_hex, _SIGNATURE_BYTES, "signature")).hexdigest()


# -- 4. Winner and alternates --------------------------------------------------------------


def _canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def draw_material(
    *,
    randomness_hex: str,
    house_id: int,
    seed_hex: str,
    tickets_count: int,
    tickets_root_hex: str,
) -> bytes:
    """HMAC-SHA256(key = randomness bytes, msg = JSON-canonical of the draw's inputs)."""
    key = _hex_bytes(randomness_hex, _HASH_BYTES, "beacon_randomness")
    _hex_bytes(seed_hex, _HASH_BYTES, "seed")
    _hex_bytes(tickets_root_hex, _HASH_BYTES, "tickets_root")
    message = _canonical_json(
        {
            "algorithm_version": ALGORITHM_VERSION,
            "house_id": _int(house_id, "house_id"),
            "seed": seed_hex,
            "tickets_count": _int(tickets_count, "tickets_count", minimum=1),
            "tickets_root": tickets_root_hex,
        }
    )
    return hmac.new(key, message, hashlib.sha256).digest()


def pick_indices(material: bytes, tickets_count: int, alternates: int) -> list[int]:
    """Winner first, then min(alternates, N - 1) distinct alternates (rejection sampling)."""
    count = _int(tickets_count, "tickets_count", minimum=1)
    wanted = 1 + min(_int(alternates, "alternates"), count - 1)
    limit = (1 << 256) - (1 << 256) % count
    picked: list[int] = []
    seen: set[int] = set()
    counter = 0
    while len(picked) < wanted:
        if counter >= 1 << 32:
            raise ValueError("counter exhausted")  # unreachable in practice
        digest = hmac.new(
            material, _WINNER_TAG + counter.to_bytes(4, "big"), hashlib.sha256
        ).digest()
        counter += 1
        value = int.from_bytes(digest, "big")
        if value >= limit:
            continue
        index = value % count
        if index not in seen:
            seen.add(index)
            picked.append(index)
    return picked


# -- 5. Verifying the published documents --------------------------------------------------

_CHECKS = ("commitment", "tickets_count", "tickets_root", "beacon_signature", "winner")


class _Failed(Exception):
    """A check failed; the message says why."""


class _Skipped(Exception):
    """A check cannot be run yet; the message says why."""


def _ticket_leaves(tickets: dict) -> tuple[list[int], list[bytes]]:
    leaves = tickets.get("leaves")
    if not isinstance(leaves, list):
        raise _Failed("the tickets document has no list of leaves")
    numbers: list[int] = []
    packed: list[bytes] = []
    for position, leaf in enumerate(leaves):
        try:
            packed.append(leaf_bytes(leaf["ticket_number"], leaf["holder"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise _Failed(f"leaf {position} is malformed ({exc})") from None
        if numbers and leaf["ticket_number"] <= numbers[-1]:
            raise _Failed(f"leaf {position} is not in ascending ticket_number order")
        numbers.append(leaf["ticket_number"])
    return numbers, packed


def _check_commitment(record: dict) -> str:
    seed = record.get("seed")
    if seed is None:
        raise _Skipped("seed not published yet")
    seed_bytes = _hex_bytes(seed, _HASH_BYTES, "seed")
    commitment = _hex_bytes(record.get("commitment"), _HASH_BYTES, "commitment")
    if hashlib.sha256(seed_bytes).digest() != commitment:
        raise _Failed("SHA-256(seed) does not equal the commitment")
    return "ok"


def _check_tickets_count(record: dict, tickets: dict, numbers: list[int]) -> str:
    published = record.get("tickets_count")
    if published != len(numbers):
        raise _Failed(f"the draw says {published} tickets, the list has {len(numbers)} leaves")
    if tickets.get("tickets_count") != len(numbers):
        raise _Failed(
            f"the tickets document says {tickets.get('tickets_count')} tickets, "
            f"its list has {len(numbers)} leaves"
        )
    return "ok"


def _check_tickets_root(draw: dict, record: dict, tickets: dict, packed: list[bytes]) -> str:
    if tickets.get("draw_id") != draw.get("id") or tickets.get("house_id") != draw.get("house_id"):
        raise _Failed("the tickets document belongs to another draw or house")
    if not packed:
        raise _Failed("the ticket list is empty")
    root = merkle_root(packed).hex()
    if record.get("tickets_root") != root:
        raise _Failed(f"the leaves hash to {root}, the draw publishes {record.get('tickets_root')}")
    if tickets.get("tickets_root") != root:
        raise _Failed(f"the leaves hash to {root}, the list says {tickets.get('tickets_root')}")
    return "ok"


def _check_beacon(record: dict) -> str:
    source = record.get("entropy_source")
    if source is None:
        raise _Skipped("randomness not known yet")
    if source == "manual":
        raise _Skipped("manual entropy")
    if source != "drand":
        raise _Failed(f"unknown entropy_source {source!r}")
    if record.get("beacon_chain") != QUICKNET.hash:
        raise _Failed(f"unknown beacon chain {record.get('beacon_chain')!r}")
    round_number, signature = record.get("beacon_round"), record.get("beacon_signature")
    if not verify_beacon_signature(round_number, signature):
        raise _Failed(f"not a valid quicknet signature of round {round_number}")
    if record.get("beacon_randomness") != beacon_randomness(signature):
        raise _Failed("beacon_randomness is not SHA-256 of the signature")
    return "ok"


def _check_winner(draw: dict, record: dict, numbers: list[int]) -> tuple[str, int, list[int]]:
    if record.get("beacon_randomness") is None:
        raise _Skipped("draw not completed")
    if record.get("seed") is None:
        raise _Skipped("seed not published yet")
    if record.get("algorithm_version") != ALGORITHM_VERSION:
        raise _Failed(f"algorithm_version {record.get('algorithm_version')!r} is not 1")
    published_alternates = record.get("alternates")
    if not isinstance(published_alternates, list):
        raise _Failed("alternates is not a list")
    material = draw_material(
        randomness_hex=record["beacon_randomness"],
        house_id=draw.get("house_id"),
        seed_hex=record["seed"],
        tickets_count=record.get("tickets_count"),
        tickets_root_hex=record.get("tickets_root"),
    )
    indices = pick_indices(material, record["tickets_count"], len(published_alternates))
    if max(indices) >= len(numbers):
        raise _Failed("the ticket list is shorter than tickets_count")
    winner = numbers[indices[0]]
    alternates = [numbers[index] for index in indices[1:]]
    if record.get("winning_index") != indices[0]:
        raise _Failed(f"winning_index should be {indices[0]}, is {record.get('winning_index')}")
    if record.get("winning_ticket_number") != winner or draw.get("winning_ticket_number") != winner:
        raise _Failed(f"the winning ticket should be {winner}")
    if published_alternates != alternates:
        raise _Failed(f"the alternates should be {alternates}")
    return "ok", winner, alternates


def _run(check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except _Skipped as exc:
        return f"skipped: {exc}"
    except (_Failed, KeyError, TypeError, ValueError) as exc:
        return f"failed: {exc}"


def verify_documents(draw: dict, tickets: dict) -> dict:
    """Recompute a draw from its two published documents (DRAWS.md section 5)."""
    checks = dict.fromkeys(_CHECKS, "failed: not run")
    report: dict[str, Any] = {"ok": False, "winning_ticket_number": None, "alternates": []}
    record = draw.get("verification") if isinstance(draw, dict) else None
    if not isinstance(record, dict) or not isinstance(tickets, dict):
        checks = dict.fromkeys(_CHECKS, "failed: the documents are not a draw and its tickets")
        return {**report, "checks": checks}
    try:
        numbers, packed = _ticket_leaves(tickets)
    except _Failed as exc:
        numbers, packed = None, None
        checks.update(tickets_count=f"failed: {exc}", tickets_root=f"failed: {exc}")
        checks["winner"] = f"failed: {exc}"
    checks["commitment"] = _run(_check_commitment, record)
    checks["beacon_signature"] = _run(_check_beacon, record)
    if numbers is not None:
        checks["tickets_count"] = _run(_check_tickets_count, record, tickets, numbers)
        checks["tickets_root"] = _run(_check_tickets_root, draw, record, tickets, packed)
        outcome = _run(_check_winner, draw, record, numbers)
        if isinstance(outcome, tuple):
            checks["winner"], report["winning_ticket_number"], report["alternates"] = outcome
        else:
            checks["winner"] = outcome
    report["ok"] = not any(value.startswith("failed") for value in checks.values())
    return {**report, "checks": checks}


def _load(path: str) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Recompute a house-raffle draw (algorithm 1).")
    parser.add_argument("--draw", required=True, help="the body of GET /api/v1/draws/{id}/")
    parser.add_argument("--tickets", required=True, help="the body of .../draws/{id}/tickets/")
    arguments = parser.parse_args(argv)
    try:
        draw, tickets = _load(arguments.draw), _load(arguments.tickets)
    except (OSError, ValueError) as exc:
        reason = f"failed: cannot read the documents ({exc})"
        report = {
            "ok": False,
            "winning_ticket_number": None,
            "alternates": [],
            "checks": dict.fromkeys(_CHECKS, reason),
        }
    else:
        report = verify_documents(draw, tickets)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
