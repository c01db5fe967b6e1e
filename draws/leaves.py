"""The frozen leaves as one ``bytes`` blob of 24-byte records, read without copying each leaf.

``draws.verify`` takes a sequence of leaf bytes; ``PackedLeaves`` is that sequence
over one blob (memoryview slices), so a million leaves cost 24 MB, not a million
Python objects.
"""

import struct
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import overload

from draws import verify

LEAF_BYTES = 24  # ticket_number (8 bytes, big-endian) || holder (16 bytes): DRAWS.md section 2
HOLDER_BYTES = LEAF_BYTES - 8
_LEAF = struct.Struct(f"{LEAF_BYTES}s")


class PackedLeaves(Sequence[memoryview]):
    def __init__(self, blob: bytes | bytearray | memoryview) -> None:
        if len(blob) % LEAF_BYTES:
            raise ValueError(f"a leaf blob is a multiple of {LEAF_BYTES} bytes")
        self._view = memoryview(blob)

    def __len__(self) -> int:
        return len(self._view) // LEAF_BYTES

    @overload
    def __getitem__(self, index: int) -> memoryview: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...
    def __getitem__(self, index: int | slice) -> memoryview | list[bytes]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            # struct unpacks the whole run in C: no Python-level loop per leaf.
            part = self._view[start * LEAF_BYTES : max(start, stop) * LEAF_BYTES]
            return [leaf for (leaf,) in _LEAF.iter_unpack(part)]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("leaf index out of range")
        return self._view[index * LEAF_BYTES : (index + 1) * LEAF_BYTES]

    def __iter__(self) -> Iterator[bytes]:
        return map(itemgetter(0), _LEAF.iter_unpack(self._view))

    def ticket_number(self, index: int) -> int:
        return int.from_bytes(self[index][:8], "big")

    def holder(self, index: int) -> str:
        return self[index][8:].hex()

    def index_of(self, ticket_number: int) -> int | None:
        """Binary search: the leaves are ascending by ticket number."""
        low, high = 0, len(self)
        while low < high:
            middle = (low + high) // 2
            if self.ticket_number(middle) < ticket_number:
                low = middle + 1
            else:
                high = middle
        if low < len(self) and self.ticket_number(low) == ticket_number:
            return low
        return None


def unpack(leaf: bytes | memoryview) -> tuple[int, str]:
    """(ticket_number, holder hex) of one leaf."""
    return int.from_bytes(leaf[:8], "big"), bytes(leaf[8:]).hex()


# A proof needs the leaves of one subtree of 2**SUBTREE_HEIGHT and the roots of all of
# them: 1,024 leaves hashed instead of a million (docs/draws.md, "Proofs").
SUBTREE_HEIGHT = 10
_INDEX_HEADER = struct.Struct(">B")  # the height the index was built with
_INDEX_ENTRY = struct.Struct(">Q32s")  # first ticket number of the subtree, its root


class SubtreeIndex:
    """The first ticket number and Merkle root of each aligned subtree of a frozen list.

    Stored with the list (``FrozenTicketList.subtree_index``, 40 bytes a subtree:
    39 KB for a million tickets) and self-describing: it carries its height.
    """

    def __init__(self, height: int, firsts: list[int], roots: list[bytes]) -> None:
        self.height, self.firsts, self.roots = height, firsts, roots

    @classmethod
    def build(cls, leaves: PackedLeaves, height: int | None = None) -> "SubtreeIndex":
        height = SUBTREE_HEIGHT if height is None else height
        size = 1 << height
        starts = range(0, len(leaves), size)
        return cls(
            height,
            [leaves.ticket_number(start) for start in starts],
            [verify.merkle_root(leaves[start : start + size]) for start in starts],
        )

    @classmethod
    def unpack(cls, blob: bytes) -> "SubtreeIndex":
        (height,) = _INDEX_HEADER.unpack_from(blob)
        entries = list(_INDEX_ENTRY.iter_unpack(memoryview(blob)[_INDEX_HEADER.size :]))
        return cls(height, [first for first, _ in entries], [root for _, root in entries])

    def pack(self) -> bytes:
        return _INDEX_HEADER.pack(self.height) + b"".join(
            _INDEX_ENTRY.pack(first, root)
            for first, root in zip(self.firsts, self.roots, strict=True)
        )

    @property
    def subtree_size(self) -> int:
        return 1 << self.height

    def tree_root(self) -> bytes:
        """``merkle_root`` of every leaf: the subtree roots are one level of the tree."""
        return verify.node_root(self.roots)

    def subtree_of(self, ticket_number: int) -> int | None:
        """The subtree whose leaves would hold this ticket number (they ascend), if any."""
        subtree = bisect_right(self.firsts, ticket_number) - 1
        return subtree if subtree >= 0 else None

    def audit_path(self, subtree_leaves: PackedLeaves, subtree: int, offset: int) -> list[bytes]:
        """``verify.audit_path`` of leaf ``offset`` of ``subtree``, from that subtree's leaves."""
        return verify.audit_path(subtree_leaves, offset) + verify.node_audit_path(
            self.roots, subtree
        )
