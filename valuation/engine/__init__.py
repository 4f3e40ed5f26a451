"""Fairshare's valuation engine: Shapley values of coalition games, pure numpy + shap.

No Django here, and nothing of the project outside this package: the service wraps this
library and takes its vocabulary (tasks, metrics, model families and their parameter
layouts, label rules) from it. Public contract::

    from valuation.engine import estimate, ValuationResult
    res = estimate(game, method="auto", budget=None, tolerance=None, seed=0)

See docs/valuation.md for the methods and their guarantees. (The module that defines
``estimate`` is ``valuation/engine/estimate.py``; the package attribute ``estimate`` is the
function.)
"""

# Bumped whenever a change can move any estimate; valuation runs record it in their input digest.
__version__ = "2026.12.1"

from .cache import CoalitionCache, InMemoryCoalitionCache, coalition_keys
from .estimate import METHODS, default_budget, estimate
from .families import (
    ModelFamily,
    check_output_count,
    get_model_family,
    model_family_names,
    register_model_family,
    unregister_model_family,
)
from .fl import FLRoundGame, MultiRoundGame
from .games import AirportGame, Game, GloveGame, UnanimityGame, WeightedVotingGame
from .metrics import METRICS, METRICS_BY_TASK, TASKS, check_labels
from .oracle import BudgetExceeded
from .result import ValuationResult

__all__ = [
    "estimate",
    "ValuationResult",
    "METHODS",
    "default_budget",
    "CoalitionCache",
    "InMemoryCoalitionCache",
    "coalition_keys",
    "FLRoundGame",
    "MultiRoundGame",
    "Game",
    "AirportGame",
    "GloveGame",
    "UnanimityGame",
    "WeightedVotingGame",
    "TASKS",
    "METRICS",
    "METRICS_BY_TASK",
    "check_labels",
    "check_output_count",
    "ModelFamily",
    "register_model_family",
    "unregister_model_family",
    "get_model_family",
    "model_family_names",
    "BudgetExceeded",
]
