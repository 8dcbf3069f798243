from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking

        from .webhooks import on_tracking

        tracking.connect(on_tracking, dispatch_uid="campaigns.webhooks.on_tracking")
