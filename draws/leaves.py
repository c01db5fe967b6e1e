"""The frozen leaves as one ``bytes`` blob of 24-byte records, read without copying each leaf.

``draws.verify`` takes a sequence of leaf bytes; ``PackedLeaves`` is that sequence
over one blob (memoryview slices), so a million leaves cost 24 MB, not a million
Python objects.
"""

import struct
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import overload

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
