"""Black-box parity: our estimators against the best peer on games without FL structure.

    .venv/bin/python benchmarks/valuation_blackbox.py [--seeds N] [--n N] [--out FILE]

Games (n = 11, 2,048 coalitions): two random unanimity games with interactions up to
order 3, an airport game, a weighted voting game, and round 1 of a simulated FL run seen
only through its utility (the wrapper hides ``mixture_weights``, so ``auto`` cannot use
the Taylor control variate). Budgets: 5, 10, 25 and 50 % of 2^n distinct coalitions.
Ours: ``auto`` (which resolves to ``stratified`` here), ``stratified``, ``kernel``. Peers:
shap KernelExplainer (in this process, ``l1_reg=False``, ``nsamples = budget - 2``);
shapiq KernelSHAP (paired), SVARM and kADDSHAP (2-additive, unpaired) in the peer
environment, through benchmarks/valuation_peers.py. Every estimator reads the same
utility table through a distinct-coalition counter (ours through the engine's oracle).
Prints, per game, budget and estimator, the median relative L2 error against the exact
values, its ratio to the best peer, the 95 % interval coverage of ours and the median
warm time; then whether ``auto`` is never worse than the best peer.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]


def _load_main_benchmark():
    # benchmarks/valuation.py shares its name with the engine's package, so load it by path.
    spec = importlib.util.spec_from_file_location("valuation_benchmark", HERE / "valuation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # also pins BLAS to one thread, as for the main benchmark
    return module


bench = _load_main_benchmark()

import numpy as np  # noqa: E402

from valuation.engine import AirportGame, UnanimityGame, WeightedVotingGame, estimate  # noqa: E402
from valuation.engine.cache import masks_from_keys  # noqa: E402
from valuation.engine.estimators.kernel import warm_up_shap  # noqa: E402
from valuation.engine.simulate import simulate_consortium, simulate_training_run  # noqa: E402

BUDGET_FRACTIONS = (0.05, 0.10, 0.25, 0.50)
OUR_METHODS = ("auto", "stratified", "kernel")
SHAP_PEER = "shap KernelExplainer"
ENV_PEERS = ("shapiq KernelSHAP", "shapiq SVARM", "shapiq kADDSHAP")
PEERS = (SHAP_PEER, *ENV_PEERS)
WARM_UP_SEED = 10_000


class BlackBoxGame:
    """Only ``n_players`` and ``utility``: what any estimator may know of the game."""

    def __init__(self, n_players: int, utility) -> None:
        self.n_players = n_players
        self.utility = utility


def _table_game(table: np.ndarray) -> BlackBoxGame:
    n = int(round(np.log2(table.size)))
    powers = 1 << np.arange(n, dtype=np.int64)
    return BlackBoxGame(n, lambda coalitions: table[np.asarray(coalitions, dtype=np.int64) @ powers])


def build_games(n: int = 11) -> list[dict]:
    """The games as utility tables (everyone pays the same lookup) with exact values."""
    consortium = simulate_consortium(n_factories=n, seed=0)
    fl_round = simulate_training_run(consortium, rounds=2, seed=0).round_game(
        1, consortium=consortium, metric="neg_log_loss"
    )
    rng = np.random.default_rng(11)
    costs, votes = rng.uniform(1.0, 10.0, n).round(1), rng.integers(1, 10, n)
    sources = {
        "unanimity 20 terms": UnanimityGame.random(n, max_order=3, n_terms=20, seed=3),
        "unanimity 40 terms": UnanimityGame.random(n, max_order=3, n_terms=40, seed=7),
        "airport": AirportGame(costs),
        "voting": WeightedVotingGame(votes, quota=float(np.ceil(votes.sum() / 2))),
        "FL log-loss (black box)": BlackBoxGame(n, fl_round.utility),
    }
    all_coalitions = masks_from_keys(np.arange(2**n), n)
    games = []
    for name, source in sources.items():
        table = np.asarray(source.utility(all_coalitions), dtype=np.float64)
        game = _table_game(table)
        games.append(
            {
                "name": name,
                "kind": "black-box",
                "game": game,
                "table": table,
                "exact": estimate(game, method="exact").values,
            }
        )
    return games


def budgets_for(n: int) -> dict[float, int]:
    return {fraction: int(round(fraction * 2**n)) for fraction in BUDGET_FRACTIONS}


def run_ours(games, budgets, seeds) -> list[dict]:
    records = []
    for entry in games:
        for method in OUR_METHODS:
            estimate(entry["game"], method=method, budget=budgets[BUDGET_FRACTIONS[0]], seed=WARM_UP_SEED)
            for fraction, budget in budgets.items():
                for seed in seeds:
                    started = time.perf_counter()
                    result = estimate(entry["game"], method=method, budget=budget, seed=seed)
                    seconds = time.perf_counter() - started
                    record = bench._record(
                        f"ours {method}",
                        entry,
                        fraction,
                        budget,
                        seed,
                        result.values,
                        result.evaluations,
                        seconds,
                        result.method,
                    )
                    covered = (result.ci_low <= entry["exact"] + 1e-12) & (entry["exact"] - 1e-12 <= result.ci_high)
                    record["coverage"] = float(covered.mean())
                    records.append(record)
    return records


def run_shap(games, budgets, seeds) -> list[dict]:
    shap = warm_up_shap()
    records = []
    for entry in games:
        bench._shap_values(shap, SHAP_PEER, bench._counter(entry), budgets[BUDGET_FRACTIONS[0]], WARM_UP_SEED)
        for fraction, budget in budgets.items():
            for seed in seeds:
                counter = bench._counter(entry)
                started = time.perf_counter()
                values = bench._shap_values(shap, SHAP_PEER, counter, budget, seed)
                seconds = time.perf_counter() - started
                records.append(
                    bench._record(SHAP_PEER, entry, fraction, budget, seed, values, counter.distinct, seconds)
                )
    return records


@contextmanager
def _peer_methods(methods):
    # run_env_peers sends the main benchmark's peer list; this table wants its own.
    saved = bench.ENV_PEERS
    bench.ENV_PEERS = tuple(methods)
    try:
        yield
    finally:
        bench.ENV_PEERS = saved


def run_env_peers(games, budgets, seeds) -> list[dict]:
    python = bench.ensure_peer_env()
    if python is None:
        return []
    with tempfile.TemporaryDirectory() as tmp, _peer_methods(ENV_PEERS):
        records, _ = bench.run_env_peers(python, games, budgets, seeds, Path(tmp))
    return records


def summarise(records: list[dict]) -> list[dict]:
    """Median error, time and coverage per game, estimator and budget, with the ratio to
    the best peer at that game and budget."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault((record["game"], record["estimator"], record["fraction"]), []).append(record)
    rows = []
    for (game, estimator, fraction), group in groups.items():
        errors = [r["rel_error"] for r in group if "rel_error" in r]
        coverage = [r["coverage"] for r in group if "coverage" in r]
        rows.append(
            {
                "game": game,
                "estimator": estimator,
                "fraction": fraction,
                "budget": group[0]["budget"],
                "median_rel_error": float(np.median(errors)) if errors else float("nan"),
                "p90_rel_error": float(np.percentile(errors, 90)) if errors else float("nan"),
                "coverage": float(np.mean(coverage)) if coverage else None,
                "max_evaluations": max(r["evaluations"] for r in group),
                "median_seconds": float(np.median([r["seconds"] for r in group])),
                "failures": sum(1 for r in group if r.get("error")),
            }
        )
    best_peer = {}
    for row in rows:
        if row["estimator"] in PEERS and np.isfinite(row["median_rel_error"]):
            key = (row["game"], row["fraction"])
            best_peer[key] = min(best_peer.get(key, (np.inf, "")), (row["median_rel_error"], row["estimator"]))
    for row in rows:
        error, name = best_peer.get((row["game"], row["fraction"]), (np.nan, "none"))
        row["best_peer"], row["ratio_to_best_peer"] = (
            name,
            row["median_rel_error"] / error if error > 0 else float("nan"),
        )
    return rows


def run_blackbox(seeds: list[int], n: int = 11) -> list[dict]:
    """Every estimator on every game, budget and seed; one summary row per combination."""
    games = build_games(n)
    budgets = budgets_for(n)
    records = run_ours(games, budgets, seeds) + run_shap(games, budgets, seeds) + run_env_peers(games, budgets, seeds)
    return summarise(records)


def print_blackbox(rows: list[dict]) -> None:
    header = f"{'game':<24} {'estimator':<22} {'budget':>6} {'evals':>6} {'median':>8} {'p90':>8} {'/best':>6} {'cover':>6} {'ms':>8}"
    print("Median relative L2 error vs exact; /best = ratio to the best peer at that game and budget")
    print(header)
    print("-" * len(header))
    order = {name: i for i, name in enumerate([f"ours {m}" for m in OUR_METHODS] + list(PEERS))}
    for row in sorted(rows, key=lambda r: (r["game"], r["fraction"], order.get(r["estimator"], 99))):
        coverage = "" if row["coverage"] is None else f"{row['coverage']:.0%}"
        print(
            f"{row['game']:<24} {row['estimator']:<22} {row['budget']:>6} {row['max_evaluations']:>6} {row['median_rel_error']:>8.4f} "
            f"{row['p90_rel_error']:>8.4f} {row['ratio_to_best_peer']:>6.2f} {coverage:>6} {row['median_seconds'] * 1e3:>8.2f}"
            + (f"  ({row['failures']} failed)" if row["failures"] else "")
        )
    auto = [r for r in rows if r["estimator"] == "ours auto" and np.isfinite(r["ratio_to_best_peer"])]
    if auto:
        worst = max(auto, key=lambda r: r["ratio_to_best_peer"])
        verdict = "PASS" if worst["ratio_to_best_peer"] <= 1.0 else "FAIL"
        print(
            f"\n[{verdict}] ours auto / best peer <= 1.0 on every game and budget: worst {worst['ratio_to_best_peer']:.2f} "
            f"({worst['game']} @{worst['fraction']:.0%} vs {worst['best_peer']})"
        )
        coverage = [r["coverage"] for r in auto if r["coverage"] is not None]
        print(
            f"ours auto: 95 % intervals cover the exact value for {np.mean(coverage):.0%} of players (mean over games, budgets, seeds)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="seeds per game and budget (default 20)")
    parser.add_argument("--n", type=int, default=11, help="players per game (default 11)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = run_blackbox(list(range(args.seeds)), n=args.n)
    print_blackbox(rows)
    if args.out is not None:
        args.out.write_text(json.dumps({"seeds": args.seeds, "n": args.n, "rows": rows}, indent=1))
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
