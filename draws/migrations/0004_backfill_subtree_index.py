"""Give every list frozen before 0003 its subtree index, so a proof never builds one.

Uses ``draws.leaves.SubtreeIndex``: pure code over the stored bytes, whose
packed form carries its own height, so a later change of the height still
reads what this wrote.
"""

from django.db import migrations


def index_frozen_lists(apps, schema_editor):
    from draws.leaves import PackedLeaves, SubtreeIndex

    FrozenTicketList = apps.get_model("draws", "FrozenTicketList")
    missing = FrozenTicketList.objects.filter(subtree_index__isnull=True)
    for pk in missing.values_list("pk", flat=True):  # one list's leaves in memory at a time
        leaves = FrozenTicketList.objects.values_list("leaves", flat=True).get(pk=pk)
        packed = SubtreeIndex.build(PackedLeaves(bytes(leaves))).pack()
        missing.filter(pk=pk).update(subtree_index=packed)


class Migration(migrations.Migration):
    dependencies = [("draws", "0003_frozen_list_subtree_index")]

    operations = [migrations.RunPython(index_frozen_lists, migrations.RunPython.noop)]
