"""Runs the peer estimators that need their own environment (shapiq, pyDVL: numpy<2).

Invoked by benchmarks/valuation.py as ``.venv-peers/bin/python valuation_peers.py JOB OUT``.
JOB (JSON) holds the games as utility tables, budgets and seeds; OUT (JSON) gets, per
method / game / budget / seed, the values, the distinct coalitions used and the warm
wall time. Each estimator's utility goes through ``DistinctCounter``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# The engine (for FL games) first: benchmarks/valuation.py would shadow the package.
sys.path[:0] = [os.path.dirname(HERE), HERE]
from valuation_common import DistinctCounter, fl_round_game_from_npz  # noqa: E402


def shapiq_runner(name):
    import shapiq

    cls = {
        "KernelSHAP": shapiq.KernelSHAP,
        "UnbiasedKernelSHAP": shapiq.UnbiasedKernelSHAP,
        "SVARM": shapiq.SVARM,
        "kADDSHAP": shapiq.kADDSHAP,  # shapiq's default max_order=2: a 2-additive model
    }[name]

    def run(counter, budget, seed):
        n = counter.n_players
        # KernelSHAP is strongest paired; kADD-SHAP unpaired (its default): paired, its
        # pairwise terms cancel and it returns KernelSHAP's values, while unpaired they
        # absorb the even part of the game (measured: unanimity games, 25 % of 2^11,
        # median error 0.026 unpaired vs 0.038 paired).
        kwargs = {"pairing_trick": True} if name == "KernelSHAP" else {}
        approximator = cls(n, random_state=seed, **kwargs)
        values = approximator.approximate(budget, lambda coalitions: counter(coalitions))
        return np.array([values[(i,)] for i in range(n)])

    return run


def pydvl_runner(name):
    from pydvl.utils.status import Status
    from pydvl.valuation import (
        AntitheticPermutationSampler,
        PermutationSampler,
        ShapleyValuation,
        StoppingCriterion,
        TMCShapleyValuation,
    )
    from pydvl.valuation.games import Game

    class DistinctBudget(StoppingCriterion):
        """Stop when another whole permutation (n new coalitions at worst) would overrun."""

        def __init__(self, counter, budget):
            super().__init__()
            self.counter, self.budget = counter, budget

        def _check(self, result):
            if self.counter.distinct + self.counter.n_players > self.budget:
                self._converged = np.full_like(result.indices, True, dtype=bool)
                return Status.Converged
            return Status.Pending

        def completion(self):
            return min(1.0, self.counter.distinct / self.budget)

    class TableGame(Game):
        def __init__(self, counter, empty):
            self.counter, self.empty = counter, empty
            super().__init__(counter.n_players)

        def _score(self, X):
            # pyDVL scores the empty coalition as 0 itself, so shift by U(∅).
            return self.counter.of_indices(np.asarray(X).reshape(-1).astype(int)) - self.empty

    def run(counter, budget, seed):
        game = TableGame(counter, float(counter(np.zeros((1, counter.n_players)))[0]))
        stop = DistinctBudget(counter, budget)
        if name == "TMC":
            valuation = TMCShapleyValuation(game.u, is_done=stop, seed=seed, show_warnings=False)
        else:
            sampler = (AntitheticPermutationSampler if name == "antithetic" else PermutationSampler)(seed=seed)
            valuation = ShapleyValuation(game.u, sampler, is_done=stop, show_warnings=False)
        valuation.fit(game.data)
        result = valuation.result
        values = np.zeros(counter.n_players)
        values[np.asarray(result.indices, dtype=int)] = result.values
        return values

    return run


RUNNERS = {
    "shapiq KernelSHAP": lambda: shapiq_runner("KernelSHAP"),
    "shapiq UnbiasedKernelSHAP": lambda: shapiq_runner("UnbiasedKernelSHAP"),
    "shapiq SVARM": lambda: shapiq_runner("SVARM"),
    "shapiq kADDSHAP": lambda: shapiq_runner("kADDSHAP"),
    "pyDVL permutation": lambda: pydvl_runner("permutation"),
    "pyDVL antithetic": lambda: pydvl_runner("antithetic"),
    "pyDVL TMC": lambda: pydvl_runner("TMC"),
}


def main(job_path, out_path):
    with open(job_path) as handle:
        job = json.load(handle)
    results = []
    for method in job["methods"]:
        run = RUNNERS[method]()
        run(_counter(job["games"][0]), job["budgets"][0], 0)  # warm-up, untimed
        for game in job["games"]:
            for budget in job["budgets"]:
                for seed in job["seeds"]:
                    counter = _counter(game)
                    started = time.perf_counter()
                    try:
                        values, error = run(counter, budget, seed).tolist(), None
                    except Exception as exc:  # a peer failing is a result to report, not a crash
                        values, error = None, f"{type(exc).__name__}: {exc}"
                    results.append({
                        "method": method, "game": game["name"], "budget": budget, "seed": seed,
                        "values": values, "evaluations": counter.distinct, "seconds": time.perf_counter() - started,
                        "error": error,
                    })
    with open(out_path, "w") as handle:
        json.dump({"results": results, "versions": _versions()}, handle)


_FL_GAMES = {}


def _counter(game):
    if "table" in game:
        return DistinctCounter.from_table(game["table"])
    if game["npz"] not in _FL_GAMES:
        _FL_GAMES[game["npz"]] = fl_round_game_from_npz(game["npz"])
    fl_game = _FL_GAMES[game["npz"]]
    return DistinctCounter(fl_game.utility, fl_game.n_players)


def _versions():
    from importlib.metadata import version

    return {name: version(name) for name in ("numpy", "pyDVL", "shapiq")}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
