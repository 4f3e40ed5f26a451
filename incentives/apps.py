"""Django application configuration for ``incentives``."""

from django.apps import AppConfig


class IncentivesConfig(AppConfig):
    name = "incentives"
    default_auto_field = "django.db.models.BigAutoField"
