"""Django application configuration for ``incentives``."""

from django.apps import AppConfig


class IncentivesConfig(AppConfig):
    name = "incentives"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incentives import pool_selectors  # noqa: F401  (registers its sections of the consortium overview)
