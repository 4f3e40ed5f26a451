"""Django application configuration for ``ledger``."""

from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from ledger.enforcement import sqlite_register_functions

        # Every SQLite connection needs the function the append-only triggers call.
        connection_created.connect(sqlite_register_functions, dispatch_uid="ledger_sqlite_functions")
