from celery.signals import worker_init, worker_process_init
from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

from .statement_timeout import worker_connection_prepare


class CoreConfig(AppConfig):
    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .groups import groups_ensure
        from .jobs import signals_connect
        from .schedules import periodic_jobs_sync

        # After every migrate, so new models' permissions reach the role groups and beat's
        # tables hold every periodic job (declared once, in core/schedules.py).
        post_migrate.connect(groups_ensure, dispatch_uid="offerlab-groups")
        post_migrate.connect(periodic_jobs_sync, dispatch_uid="offerlab-periodic-jobs")

        # A worker's statements get WORKER_STATEMENT_TIMEOUT_MS (web requests get theirs from
        # core.statement_timeout's middleware): prefork children and a solo worker alike.
        worker_process_init.connect(worker_database_prepare, dispatch_uid="offerlab-worker-timeout", weak=False)
        worker_init.connect(worker_database_prepare, dispatch_uid="offerlab-worker-timeout-main", weak=False)
        # Tracked jobs (core.jobs) move to running / done / failed from the worker's signals.
        signals_connect()


def worker_database_prepare(**kwargs) -> None:
    connection_created.connect(worker_connection_prepare, dispatch_uid="offerlab-worker-connection")
    # A connection opened before this point (inherited from the parent) would miss the setting.
    connections.close_all()


class AdminConfig(admin_apps.AdminConfig):
    """Django's admin with a site that lets the Admin role in (not only is_staff users)."""

    default = False  # "core" alone means CoreConfig
    default_site = "core.admin_site.AdminSite"
