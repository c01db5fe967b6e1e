"""BLS check of real quicknet rounds (bls-unchained-g1-rfc9380), no network."""

import hashlib

import pytest

from draws.verify import QUICKNET, beacon_randomness, load_bls, verify_beacon_signature
from tests.draws.quicknet_rounds import (
    QUICKNET_ROUNDS,
    RECORDED_ROUND,
    RECORDED_SIGNATURE,
    flip_bit,
)


def test_quicknet_constants_are_the_published_chain() -> None:
    assert QUICKNET.hash == "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
    assert QUICKNET.genesis_time == 1692803367
    assert QUICKNET.period == 3
    assert QUICKNET.scheme == "bls-unchained-g1-rfc9380"
    assert len(bytes.fromhex(QUICKNET.public_key)) == 96


@pytest.mark.parametrize("round_number", sorted(QUICKNET_ROUNDS))
def test_recorded_quicknet_round_verifies_and_gives_its_randomness(round_number: int) -> None:
    recorded = QUICKNET_ROUNDS[round_number]
    assert verify_beacon_signature(round_number, recorded["signature"])
    assert beacon_randomness(recorded["signature"]) == recorded["randomness"]


@pytest.mark.parametrize("bit", [0, 77, 200, 383])
def test_one_flipped_bit_is_refused(bit: int) -> None:
    assert not verify_beacon_signature(RECORDED_ROUND, flip_bit(RECORDED_SIGNATURE, bit))


@pytest.mark.parametrize("round_number", [RECORDED_ROUND - 1, RECORDED_ROUND + 1, 3])
def test_a_signature_is_refused_for_any_other_round(round_number: int) -> None:
    assert not verify_beacon_signature(round_number, RECORDED_SIGNATURE)


def test_another_rounds_signature_is_refused() -> None:
    assert not verify_beacon_signature(RECORDED_ROUND, QUICKNET_ROUNDS[3]["signature"])
    assert not verify_beacon_signature(2, QUICKNET_ROUNDS[3]["signature"])


def _point_not_on_curve() -> str:
    """A compressed G1 encoding (flag bits set) whose x has no y on the curve."""
    for x in range(1, 100):
        candidate = bytearray(x.to_bytes(48, "big"))
        candidate[0] |= 0x80
        if not _decompresses(bytes(candidate)):
            return candidate.hex()
    raise AssertionError("no such x below 100")


def _decompresses(raw: bytes) -> bool:
    load_bls()  # keeps the process's recursion limit (see load_bls)
    from py_ecc.bls.point_compression import decompress_G1

    try:
        decompress_G1(int.from_bytes(raw, "big"))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "zz" * 48,
        RECORDED_SIGNATURE[:-2],
        RECORDED_SIGNATURE + "00",
        RECORDED_SIGNATURE.upper(),
        " " + RECORDED_SIGNATURE[1:],
        "0x" + RECORDED_SIGNATURE[2:],
        "c0" + "00" * 47,  # the point at infinity
        "00" * 48,  # compression flag missing
        _point_not_on_curve(),
        None,
        12345,
    ],
    ids=[
        "empty",
        "not-hex",
        "short",
        "long",
        "uppercase",
        "space",
        "0x-prefix",
        "infinity",
        "no-flag",
        "off-curve",
        "none",
        "int",
    ],
)
def test_malformed_signature_is_false_not_an_error(signature: object) -> None:
    assert verify_beacon_signature(RECORDED_ROUND, signature) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("round_number", [0, -1, 2**64, True, "30662982", 30662982.0])
def test_malformed_round_is_false_not_an_error(round_number: object) -> None:
    assert verify_beacon_signature(round_number, RECORDED_SIGNATURE) is False  # type: ignore[arg-type]


def test_randomness_is_sha256_of_the_signature_bytes() -> None:
    raw = bytes.fromhex(RECORDED_SIGNATURE)
    assert beacon_randomness(RECORDED_SIGNATURE) == hashlib.sha256(raw).hexdigest()


def test_verifying_a_signature_leaves_the_process_recursion_limit_alone() -> None:
    """py_ecc raises it to 100,000 on import; a web process must keep its own (a fresh
    process, since py_ecc is imported only once per process)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; from draws.verify import verify_beacon_signature; "
        "before = sys.getrecursionlimit(); verify_beacon_signature(1, '00' * 48); "
        "print(before, sys.getrecursionlimit())"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    before, after = result.stdout.split()
    assert after == before
