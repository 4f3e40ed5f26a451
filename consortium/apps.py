"""Django application configuration for ``consortium``."""

from django.apps import AppConfig


class ConsortiumConfig(AppConfig):
    name = "consortium"
    default_auto_field = "django.db.models.BigAutoField"
