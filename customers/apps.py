from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CustomersConfig(AppConfig):
    name = "customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .groups import groups_ensure

        # After every migrate, so new models' permissions reach the role groups.
        post_migrate.connect(groups_ensure, dispatch_uid="offerlab-groups")
