"""Migration 0004 gives the lists frozen before 0003 the subtree index a proof reads."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from draws.leaves import PackedLeaves, SubtreeIndex
from draws.models import FrozenTicketList
from draws.verify import leaf_bytes, merkle_root
from tests.draws.flow import activated_house

BEFORE_THE_BACKFILL = [("draws", "0003_frozen_list_subtree_index")]


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_the_backfill_indexes_every_list_frozen_without_an_index_and_keeps_the_others() -> None:
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    leaves = [leaf_bytes(number, f"{number:032x}") for number in range(1, 2500)]
    blob = b"".join(leaves)
    root = merkle_root(leaves).hex()
    try:
        _migrate(BEFORE_THE_BACKFILL)
        old = FrozenTicketList.objects.create(
            house=activated_house(), tickets_root=root, tickets_count=len(leaves), leaves=blob
        )
        kept = FrozenTicketList.objects.create(
            house=activated_house(),
            tickets_root=root,
            tickets_count=len(leaves),
            leaves=blob,
            subtree_index=b"\x00already",
        )
    finally:
        _migrate(latest)
    index = SubtreeIndex.unpack(bytes(FrozenTicketList.objects.get(pk=old.pk).subtree_index))
    assert index.pack() == SubtreeIndex.build(PackedLeaves(blob)).pack()
    assert (index.height, len(index.roots)) == (10, 3)
    assert index.tree_root().hex() == root
    assert bytes(FrozenTicketList.objects.get(pk=kept.pk).subtree_index) == b"\x00already"
