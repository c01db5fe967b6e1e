"""Fixed inputs -> commitment, leaves, root, material, winner and alternates."""

import hashlib
import hmac

import pytest

from draws.verify import (
    ALGORITHM_VERSION,
    audit_path,
    beacon_randomness,
    draw_material,
    leaf_bytes,
    merkle_root,
    pick_indices,
    verify_beacon_signature,
)
from tests.draws import vectors as v
from tests.draws.test_merkle import reference_mth


def _v1_leaves() -> list[bytes]:
    return [leaf_bytes(n, h) for n, h in zip(v.V1_TICKET_NUMBERS, v.V1_HOLDERS, strict=True)]


def reference_pick(material: bytes, n: int, alternates: int) -> list[int]:
    """DRAWS.md section 4 written out plainly."""
    picked: list[int] = []
    c = 0
    while len(picked) < 1 + min(alternates, n - 1):
        msg = b"winner" + c.to_bytes(4, "big")
        x = int.from_bytes(hmac.new(material, msg, hashlib.sha256).digest(), "big")
        c += 1
        if x < 2**256 - (2**256 % n) and x % n not in picked:
            picked.append(x % n)
    return picked


def test_algorithm_version_is_1() -> None:
    assert ALGORITHM_VERSION == 1


def test_vector_1_commitment_and_holders() -> None:
    assert hashlib.sha256(bytes.fromhex(v.V1_SEED)).hexdigest() == v.V1_COMMITMENT
    holders = [v.holder(v.V1_HOLDER_KEY, v.V1_HOUSE_ID, user) for user in v.V1_USER_IDS]
    assert holders == v.V1_HOLDERS


def test_vector_1_leaves_and_root() -> None:
    leaves = _v1_leaves()
    assert leaves[0].hex() == v.V1_FIRST_LEAF
    assert merkle_root(leaves).hex() == v.V1_TICKETS_ROOT
    assert reference_mth(leaves).hex() == v.V1_TICKETS_ROOT
    assert [node.hex() for node in audit_path(leaves, 3)] == v.V1_AUDIT_PATH_OF_INDEX_3


def test_vector_1_beacon() -> None:
    assert verify_beacon_signature(v.V1_BEACON_ROUND, v.V1_BEACON_SIGNATURE)
    assert beacon_randomness(v.V1_BEACON_SIGNATURE) == v.V1_BEACON_RANDOMNESS


def test_vector_1_material_equals_hmac_over_the_literal_canonical_json() -> None:
    material = draw_material(
        randomness_hex=v.V1_BEACON_RANDOMNESS,
        house_id=v.V1_HOUSE_ID,
        seed_hex=v.V1_SEED,
        tickets_count=10,
        tickets_root_hex=v.V1_TICKETS_ROOT,
    )
    literal = (
        '{"algorithm_version":1,"house_id":42,'
        f'"seed":"{v.V1_SEED}","tickets_count":10,"tickets_root":"{v.V1_TICKETS_ROOT}"}}'
    )
    key = bytes.fromhex(v.V1_BEACON_RANDOMNESS)
    assert material == hmac.new(key, literal.encode("ascii"), hashlib.sha256).digest()
    assert material.hex() == v.V1_MATERIAL


def test_vector_1_winner_and_alternates() -> None:
    material = bytes.fromhex(v.V1_MATERIAL)
    indices = pick_indices(material, 10, 3)
    assert indices == v.V1_INDICES == reference_pick(material, 10, 3)
    assert v.V1_TICKET_NUMBERS[indices[0]] == v.V1_WINNING_TICKET
    assert [v.V1_TICKET_NUMBERS[i] for i in indices[1:]] == v.V1_ALTERNATES


def test_vector_2_single_ticket() -> None:
    leaves = [leaf_bytes(1, "00" * 16)]
    assert leaves[0].hex() == v.V2_LEAF
    assert merkle_root(leaves).hex() == v.V2_TICKETS_ROOT
    assert hashlib.sha256(b"\x00" + leaves[0]).hexdigest() == v.V2_TICKETS_ROOT
    material = draw_material(
        randomness_hex=v.V2_RANDOMNESS,
        house_id=v.V2_HOUSE_ID,
        seed_hex=v.V2_SEED,
        tickets_count=1,
        tickets_root_hex=v.V2_TICKETS_ROOT,
    )
    assert material.hex() == v.V2_MATERIAL
    assert pick_indices(material, 1, 3) == v.V2_INDICES


def test_vector_3_just_above_a_power_of_two() -> None:
    leaves = [leaf_bytes(n, v.v3_holder(n)) for n in range(1, 514)]
    assert merkle_root(leaves).hex() == v.V3_TICKETS_ROOT == reference_mth(leaves).hex()
    assert hashlib.sha256(b"vector 3 entropy").hexdigest() == v.V3_RANDOMNESS
    assert hashlib.sha256(b"vector 3 seed").hexdigest() == v.V3_SEED
    material = draw_material(
        randomness_hex=v.V3_RANDOMNESS,
        house_id=v.V3_HOUSE_ID,
        seed_hex=v.V3_SEED,
        tickets_count=513,
        tickets_root_hex=v.V3_TICKETS_ROOT,
    )
    assert material.hex() == v.V3_MATERIAL
    assert pick_indices(material, 513, 3) == v.V3_INDICES == reference_pick(material, 513, 3)
    assert [i + 1 for i in v.V3_INDICES] == v.V3_TICKET_NUMBERS


@pytest.mark.parametrize("alternates", [0, 1, 3, 9, 10, 50])
def test_alternates_are_capped_at_n_minus_1_and_distinct(alternates: int) -> None:
    indices = pick_indices(bytes.fromhex(v.V1_MATERIAL), 10, alternates)
    assert len(indices) == 1 + min(alternates, 9)
    assert len(set(indices)) == len(indices)
    assert indices == reference_pick(bytes.fromhex(v.V1_MATERIAL), 10, alternates)


def test_more_alternates_extend_the_same_ranking() -> None:
    material = bytes.fromhex(v.V3_MATERIAL)
    assert pick_indices(material, 513, 10)[:4] == pick_indices(material, 513, 3)


def test_values_at_or_above_the_limit_are_skipped_not_folded() -> None:
    # With N = 2**255 + 1 the limit is N itself: about half of the x_c are rejected.
    n = 2**255 + 1
    material = bytes.fromhex(v.V1_MATERIAL)
    stream = [
        int.from_bytes(
            hmac.new(material, b"winner" + c.to_bytes(4, "big"), hashlib.sha256).digest(), "big"
        )
        for c in range(32)
    ]
    accepted = [x for x in stream if x < n]
    assert len(accepted) >= 4
    assert stream.index(accepted[3]) > 3  # the first four picks did skip some x_c
    assert pick_indices(material, n, 3) == accepted[:4]
    assert pick_indices(material, n, 3) != [x % n for x in stream[:4]]


@pytest.mark.parametrize(
    "overrides",
    [
        {"randomness_hex": "11" * 31},
        {"randomness_hex": "AA" * 32},
        {"seed_hex": "00" * 31},
        {"tickets_root_hex": "0X" + "00" * 31},
        {"tickets_count": 0},
        {"house_id": "42"},
        {"house_id": True},
    ],
)
def test_malformed_material_inputs_are_refused(overrides: dict) -> None:
    arguments = {
        "randomness_hex": "11" * 32,
        "house_id": 42,
        "seed_hex": "22" * 32,
        "tickets_count": 10,
        "tickets_root_hex": "33" * 32,
        **overrides,
    }
    with pytest.raises(ValueError):
        draw_material(**arguments)
