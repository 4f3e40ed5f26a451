"""Django application configuration for ``incentives``."""

from django.apps import AppConfig


class IncentivesConfig(AppConfig):
    name = "incentives"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incentives import pool_selectors  # noqa: F401  (registers its sections of the consortium overview)
        from incentives.dispute_figures import dispute_figures_prepare
        from valuation.signals import valuation_run_succeeded

        valuation_run_succeeded.connect(dispute_figures_prepare, dispatch_uid="incentives.dispute_figures_prepare")
