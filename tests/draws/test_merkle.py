"""RFC 6962 Merkle tree: the fast iterative code against the recursive definition."""

import hashlib

import pytest

from draws.leaves import PackedLeaves, SubtreeIndex
from draws.verify import (
    audit_path,
    leaf_bytes,
    merkle_root,
    node_audit_path,
    node_root,
    verify_inclusion,
)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_mth(leaves: list[bytes]) -> bytes:
    """MTH as written in RFC 6962 §2.1, recursively."""
    if len(leaves) == 1:
        return _sha256(b"\x00" + leaves[0])
    k = _largest_power_of_two_below(len(leaves))
    return _sha256(b"\x01" + reference_mth(leaves[:k]) + reference_mth(leaves[k:]))


def reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) as written in RFC 6962 §2.1.1, recursively."""
    if len(leaves) == 1:
        return []
    k = _largest_power_of_two_below(len(leaves))
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_mth(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_mth(leaves[:k])]


def _leaves(n: int) -> list[bytes]:
    return [leaf_bytes(number, _sha256(str(number).encode()).hex()[:32]) for number in range(n)]


def test_leaf_is_number_big_endian_then_holder_bytes() -> None:
    leaf = leaf_bytes(258, "00112233445566778899aabbccddeeff")
    assert leaf == bytes.fromhex("000000000000010200112233445566778899aabbccddeeff")
    assert len(leaf) == 24


@pytest.mark.parametrize(
    ("number", "holder"),
    [
        (-1, "00" * 16),
        (2**64, "00" * 16),
        (True, "00" * 16),
        (1, "00" * 15),
        (1, "00" * 17),
        (1, "AA" * 16),
        (1, "zz" * 16),
    ],
)
def test_malformed_leaf_is_refused(number: int, holder: str) -> None:
    with pytest.raises(ValueError):
        leaf_bytes(number, holder)


def test_empty_tree_has_no_root() -> None:
    with pytest.raises(ValueError):
        merkle_root([])


@pytest.mark.parametrize("n", [*range(1, 34), 63, 64, 65, 127, 128, 129, 513])
def test_root_equals_the_recursive_definition(n: int) -> None:
    leaves = _leaves(n)
    assert merkle_root(leaves) == reference_mth(leaves)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 31])
def test_every_audit_path_equals_the_recursive_definition_and_verifies(n: int) -> None:
    leaves = _leaves(n)
    root = merkle_root(leaves)
    for m in range(n):
        path = audit_path(leaves, m)
        assert path == reference_path(m, leaves)
        assert verify_inclusion(leaves[m], m, n, path, root)


def test_inclusion_is_refused_for_any_tampering() -> None:
    leaves = _leaves(11)
    root = merkle_root(leaves)
    path = audit_path(leaves, 6)
    assert verify_inclusion(leaves[6], 6, 11, path, root)
    assert not verify_inclusion(leaves[5], 6, 11, path, root)  # another leaf
    assert not verify_inclusion(leaves[6], 5, 11, path, root)  # another index
    assert not verify_inclusion(leaves[6], 6, 7, path, root)  # a size with another shape
    assert not verify_inclusion(leaves[6], 6, 11, path[:-1], root)  # path too short
    assert not verify_inclusion(leaves[6], 6, 11, [*path, path[0]], root)  # too long
    assert not verify_inclusion(leaves[6], 6, 11, [path[1], path[0], *path[2:]], root)
    assert not verify_inclusion(leaves[6], 6, 11, path, bytes(32))  # another root
    assert not verify_inclusion(leaves[6], 11, 11, path, root)  # index out of the tree
    assert not verify_inclusion(leaves[6], -1, 11, path, root)


def test_a_list_of_identical_leaves_still_depends_on_its_length() -> None:
    same = [leaf_bytes(1, "00" * 16)] * 4
    assert merkle_root(same[:3]) != merkle_root(same)


def test_large_tree_matches_the_recursive_definition() -> None:
    leaves = _leaves(3 * 16384 + 5)  # several hashing batches and odd nodes on many levels
    assert merkle_root(leaves) == reference_mth(leaves)


@pytest.mark.parametrize("height", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 33, 40])
def test_a_path_from_one_subtree_and_the_subtree_roots_equals_the_whole_trees(
    n: int, height: int
) -> None:
    """What a proof reads (one aligned subtree's leaves, every subtree's root) is enough."""
    leaves = _leaves(n)
    index = SubtreeIndex.build(PackedLeaves(b"".join(leaves)), height)
    size = 1 << height
    assert index.tree_root() == merkle_root(leaves) == reference_mth(leaves)
    for m in range(n):
        subtree, offset = divmod(m, size)
        own = PackedLeaves(b"".join(leaves[subtree * size : (subtree + 1) * size]))
        assert index.subtree_of(m) == subtree  # ticket number m is leaf m here
        assert index.audit_path(own, subtree, offset) == reference_path(m, leaves)


def test_a_subtree_index_packs_and_unpacks_to_the_same_index() -> None:
    leaves = PackedLeaves(b"".join(_leaves(21)))
    index = SubtreeIndex.build(leaves, 2)
    again = SubtreeIndex.unpack(index.pack())
    assert (again.height, again.firsts, again.roots) == (2, index.firsts, index.roots)
    assert len(index.pack()) == 1 + 6 * 40
    assert again.subtree_of(-1) is None


def test_node_hashes_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        node_root([bytes(31)])
    with pytest.raises(ValueError):
        node_audit_path([bytes(32), bytes(33)], 0)
