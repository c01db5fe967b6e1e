"""The staff groups come from console's data migration: idempotent and reversible."""

import pytest
from django.apps import apps as global_apps
from django.contrib.auth.models import Group
from django.core.management import call_command

from tests.console.staff import FINANCE, LOTTERY_OPERATORS, staff_groups


def _granted() -> dict[str, set[tuple[str, str]]]:
    return {
        group.name: set(group.permissions.values_list("content_type__app_label", "codename"))
        for group in Group.objects.prefetch_related("permissions")
    }


EXPECTED = {name: set(perms) for name, perms in staff_groups.GROUP_PERMISSIONS.items()}


@pytest.mark.django_db(transaction=True)
def test_migrating_console_creates_both_groups_and_unmigrating_removes_them() -> None:
    call_command("migrate", "console", "zero", verbosity=0)
    assert not Group.objects.filter(name__in=[LOTTERY_OPERATORS, FINANCE]).exists()

    call_command("migrate", "console", verbosity=0)

    assert _granted() == EXPECTED


@pytest.mark.django_db(transaction=True)
def test_running_the_migration_again_adds_nothing_twice() -> None:
    Group.objects.all().delete()
    staff_groups.create_staff_groups(global_apps, None)
    staff_groups.create_staff_groups(global_apps, None)

    assert Group.objects.count() == 2
    assert _granted() == EXPECTED


def test_the_custom_permissions_each_action_checks_are_granted() -> None:
    operators, finance = EXPECTED[LOTTERY_OPERATORS], EXPECTED[FINANCE]
    assert {
        ("lottery", "cancel_house"),
        ("lottery", "soft_delete_house"),
        ("draws", "conduct_draw"),
        ("draws", "disqualify_winner"),
        ("reservations", "expire_reservation"),
    } <= operators
    assert {
        ("payments", "refund_purchase"),
        ("payments", "retry_refund"),
        ("core", "replay_deadletter"),
        ("core", "discard_deadletter"),
    } <= finance
    assert not any(codename.startswith("delete_") for _, codename in operators | finance)
