from django.apps import AppConfig
from django.db.backends.signals import connection_created


class ExperimentsConfig(AppConfig):
    name = "experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .sqlite import sqlite_register

        connection_created.connect(sqlite_register, dispatch_uid="experiments.sqlite_register")
