"""The deployment check on a valuation task's time limits and the broker's visibility timeout."""

from valuation.apps import check_valuation_limits


def test_the_defaults_pass_the_check():
    assert check_valuation_limits() == []


def test_a_visibility_timeout_below_the_hard_time_limit_is_reported(settings):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
    settings.VALUATION_TASK_SOFT_TIME_LIMIT, settings.VALUATION_TASK_TIME_LIMIT = 800, 900
    assert [m.id for m in check_valuation_limits()] == ["valuation.W002"]


def test_a_soft_limit_at_or_above_the_hard_limit_is_reported(settings):
    settings.VALUATION_TASK_SOFT_TIME_LIMIT = 4000
    assert "valuation.W001" in [m.id for m in check_valuation_limits()]
