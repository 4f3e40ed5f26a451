"""Django application configuration for ``valuation``, and its deployment check."""

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class ValuationConfig(AppConfig):
    name = "valuation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(check_valuation_limits, checks.Tags.compatibility)
        from valuation import page_selectors  # registers its sections of the consortium overview
        from valuation.signals import valuation_run_succeeded

        valuation_run_succeeded.connect(page_selectors.valuation_run_figures_prepare,
                                        dispatch_uid="valuation.valuation_run_figures_prepare")


def check_valuation_limits(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The broker re-delivers an unacknowledged task after its visibility timeout: below a
    task's hard time limit, a chunk still running would be started a second time."""
    problems = []
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    if settings.VALUATION_TASK_SOFT_TIME_LIMIT >= settings.VALUATION_TASK_TIME_LIMIT:
        problems.append(checks.Warning(
            "VALUATION_TASK_SOFT_TIME_LIMIT should be below VALUATION_TASK_TIME_LIMIT, so that a slow chunk fails "
            "the run with a message before the worker child is killed.", id="valuation.W001"))
    if visibility is not None and visibility <= settings.VALUATION_TASK_TIME_LIMIT:
        problems.append(checks.Warning(
            f"CELERY_VISIBILITY_TIMEOUT ({visibility} s) is not above VALUATION_TASK_TIME_LIMIT "
            f"({settings.VALUATION_TASK_TIME_LIMIT} s): a long chunk would be delivered again while it runs.",
            id="valuation.W002"))
    return problems
