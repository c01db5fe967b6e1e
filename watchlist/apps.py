from django.apps import AppConfig


class WatchlistConfig(AppConfig):
    name = "watchlist"

    def ready(self) -> None:
        from core.dead_letters import register_resolver
        from watchlist.notifications import delivery_settled_reason

        # A dead send whose email went out since (replayed, swept) is closed, not shown.
        register_resolver("notifications.send", delivery_settled_reason)
