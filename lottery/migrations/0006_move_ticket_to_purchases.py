# Ticket moved to the purchases app (issue 8): removed from lottery's state only;
# purchases 0001 adopts the same table and 0002 renames it. No row is touched.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("lottery", "0005_participant_drop_duplicate_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Ticket")],
            database_operations=[],
        ),
    ]
