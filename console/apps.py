from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The staff console: groups, the dashboard, and admin pages that span several apps.

    It sits above every business app (it may read all of them) and below config.
    """

    name = "console"
    verbose_name = "Staff console"

    def ready(self) -> None:
        from django.contrib import admin

        from console import dashboard

        # Runs before the URLconf is first loaded, so the admin's index URL gets the dashboard.
        dashboard.install(admin.site)
