"""The staff groups and their permissions (docs/console.md).

Idempotent: running it again adds nothing twice. Reversible: the groups go away
(the permissions stay; they belong to their models). Permissions are created here
first, because Django makes them only after the whole ``migrate`` (post_migrate).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

LOTTERY_OPERATORS = "Lottery operators"
FINANCE = "Finance"

# (app_label, codename) per group; the console's admin pages check exactly these.
GROUP_PERMISSIONS: dict[str, list[tuple[str, str]]] = {
    LOTTERY_OPERATORS: [
        ("lottery", "view_house"),
        ("lottery", "add_house"),
        ("lottery", "change_house"),
        ("lottery", "cancel_house"),
        ("lottery", "soft_delete_house"),
        ("lottery", "view_promotion"),
        ("lottery", "add_promotion"),
        ("lottery", "change_promotion"),
        ("draws", "view_draw"),
        ("draws", "conduct_draw"),
        ("draws", "disqualify_winner"),
        ("reservations", "view_reservation"),
        ("reservations", "expire_reservation"),
        ("purchases", "view_ticket"),
        ("core", "view_auditentry"),
    ],
    FINANCE: [
        ("lottery", "view_house"),
        ("reservations", "view_reservation"),
        ("purchases", "view_ticket"),
        ("payments", "view_payment"),
        ("payments", "refund_purchase"),
        ("payments", "view_refund"),
        ("payments", "retry_refund"),
        ("payments", "view_sandboxledgerentry"),
        ("core", "view_deadletter"),
        ("core", "replay_deadletter"),
        ("core", "discard_deadletter"),
        ("core", "view_outboxevent"),
        ("core", "view_auditentry"),
    ],
}


def create_staff_groups(apps: object, schema_editor: object) -> None:
    for app_config in apps.get_app_configs():
        # create_permissions skips an app without models_module, which a migration state's
        # app stubs lack; put back what was there (a live registry's app keeps its module).
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_staff_groups(apps: object, schema_editor: object) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=GROUP_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0006_deadletter_staff_permissions"),
        ("lottery", "0009_house_staff_permissions"),
        ("reservations", "0005_reservation_staff_permissions"),
        ("payments", "0002_payment_refund_staff_permissions"),
        ("purchases", "0002_ticket_table_purchases_ticket"),
        ("draws", "0002_draw_staff_permissions"),
    ]

    operations = [migrations.RunPython(create_staff_groups, remove_staff_groups)]
