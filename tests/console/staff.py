"""Staff users of the console: one per group from console's migration, and one in none.

Transactional tests empty every table afterwards, the groups included; so the
groups are made again here with the migration's own function when missing.
"""

import importlib
from collections.abc import Callable

from django.apps import apps as global_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Model
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from tests.core.staff_browser import StaffBrowser

User = get_user_model()

staff_groups = importlib.import_module("console.migrations.0001_staff_groups")
LOTTERY_OPERATORS = staff_groups.LOTTERY_OPERATORS
FINANCE = staff_groups.FINANCE
ROLES = ("operator", "finance", "outsider")
GROUP_OF_ROLE = {"operator": LOTTERY_OPERATORS, "finance": FINANCE, "outsider": None}


def ensure_staff_groups() -> None:
    if Group.objects.filter(name__in=[LOTTERY_OPERATORS, FINANCE]).count() < 2:
        staff_groups.create_staff_groups(global_apps, None)


def staff_member(make_player: Callable[..., User], role: str) -> User:
    """A staff user (not a superuser) in the role's group, or in none for ``outsider``."""
    ensure_staff_groups()
    user = make_player(username=f"{role}-{User.objects.count() + 1}", is_staff=True)
    if GROUP_OF_ROLE[role] is not None:
        user.groups.add(Group.objects.get(name=GROUP_OF_ROLE[role]))
    return user


def browser_for(user: User) -> StaffBrowser:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return StaffBrowser(client)


def changelist_url(model: type[Model] | Model) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")


def offered_actions(user: User, model: type[Model]) -> set[str] | None:
    """The actions the list page offers ``user``; None when the page itself is refused."""
    client = Client()
    client.force_login(user)
    page = client.get(changelist_url(model))
    if page.status_code == 403:
        return None
    assert page.status_code == 200, page.status_code
    form = page.context.get("action_form")
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


def force_action(
    user: User, obj: Model, action: str, confirm: dict[str, str] | None = None
) -> HttpResponse:
    """POST the action as a forged request would: past any page that does not offer it.

    No CSRF check here (a plain test client), so only the permission stands in the way.
    """
    client = Client()
    client.force_login(user)
    data = {"action": action, "_selected_action": [str(obj.pk)], "index": "0"}
    if confirm is not None:
        data.update({"post": "yes", **confirm})
        del data["index"]  # the confirmation page posts without it, as Django's own do
    return client.post(changelist_url(obj), data)
