from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .groups import groups_ensure
        from .schedules import periodic_jobs_sync

        # After every migrate, so new models' permissions reach the role groups and beat's
        # tables hold every periodic job (declared once, in core/schedules.py).
        post_migrate.connect(groups_ensure, dispatch_uid="offerlab-groups")
        post_migrate.connect(periodic_jobs_sync, dispatch_uid="offerlab-periodic-jobs")


class AdminConfig(admin_apps.AdminConfig):
    """Django's admin with a site that lets the Admin role in (not only is_staff users)."""

    default = False  # "core" alone means CoreConfig
    default_site = "core.admin_site.AdminSite"
