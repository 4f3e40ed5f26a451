"""Django application configuration for ``consortium``."""

from django.apps import AppConfig


class ConsortiumConfig(AppConfig):
    name = "consortium"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from consortium import schema  # noqa: F401 — registers the OpenAPI auth extension
