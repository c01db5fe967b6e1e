from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The staff console: groups, the dashboard, and admin pages that span several apps.

    It sits above every business app (it may read all of them) and below config.
    """

    name = "console"
    verbose_name = "Staff console"
