# lottery_ticket -> purchases_ticket: a rename (metadata only, the rows stay);
# constraint and index names are explicit and unchanged.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("purchases", "0001_initial"),
    ]

    operations = [
        migrations.AlterModelTable(name="ticket", table=None),
    ]
