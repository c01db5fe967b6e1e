from django.apps import AppConfig


class PurchasesConfig(AppConfig):
    name = "purchases"

    def ready(self) -> None:
        from core.dead_letters import register_resolver
        from purchases.services.checkout import checkout_settled_reason
        from purchases.services.refunds import refund_settled_reason

        # A dead task of ours whose work was done since is closed, not shown to staff.
        register_resolver("checkout.process", checkout_settled_reason)
        register_resolver("refunds.attempt", refund_settled_reason)
