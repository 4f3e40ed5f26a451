"""Fairshare's valuation engine: Shapley values of coalition games, pure numpy + shap.

No Django here: the service wraps this library. Public contract::

    from valuation.engine import estimate, ValuationResult
    res = estimate(game, method="auto", budget=None, tolerance=None, seed=0)

See docs/valuation.md for the methods and their guarantees.
"""

from .api import METHODS, default_budget, estimate
from .cache import CoalitionCache, InMemoryCoalitionCache, coalition_keys
from .fl import FLRoundGame, MultiRoundGame
from .games import AirportGame, Game, GloveGame, UnanimityGame, WeightedVotingGame
from .models import ModelFamily, register_model_family
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
    "ModelFamily",
    "register_model_family",
    "BudgetExceeded",
]
