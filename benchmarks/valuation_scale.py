"""Valuation at consortium scale: ours against exact values, shap and the machine, in one run.

    .venv/bin/python benchmarks/valuation_scale.py            # everything (~30 minutes)
    .venv/bin/python benchmarks/valuation_scale.py --quick    # n <= 100, one seed, no peers' env
    .venv/bin/python benchmarks/valuation_scale.py --sizes 1000 --seeds 1 --methods auto

Sections (docs/valuation.md, "Scale benchmark", explains the method):

1. *Typed rounds.* Logistic FL rounds of n ∈ {20, 50, 100, 300, 1000} participants in a few
   types (valuation.engine.typed), so the exact Shapley values follow from the count-vector
   sum. For budgets 10^4 and 10^5: relative L2 error, 95 % interval coverage, time and
   peak memory of `auto` (the Taylor control variate), our `permutation` and
   `stratified`, and shap's KernelExplainer, side by side; then the targets of issue #10.
2. *Many rounds.* A 50-round run of 100 participants (80 % participation): how the
   budget is split between rounds, whether the total is honoured, what absent
   participants cost, and the error against the exact multi-round values.
3. *Black-box games* (benchmarks/valuation_blackbox.py): `auto` against shap and shapiq
   on games without FL structure.

BLAS runs on one thread (the targets are per core). Results go to
benchmarks/results/valuation_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import numpy as np  # noqa: E402
from valuation_common import DistinctCounter, relative_l2_error  # noqa: E402

from valuation.engine import estimate  # noqa: E402
from valuation.engine.estimators.kernel import warm_up_shap  # noqa: E402
from valuation.engine.typed import simulate_typed_round, simulate_typed_run  # noqa: E402

RESULTS = HERE / "results" / "valuation_scale.json"
# Types per size: few enough that the count-vector grid stays below a million.
TYPES = {
    20: [8, 6, 4, 2],
    50: [20, 15, 10, 5],
    100: [40, 30, 20, 10],
    300: [180, 90, 30],
    1000: [700, 300],
}
ROWS = {1000: 5000}  # validation rows; 3,000 otherwise
BUDGETS = (10_000, 100_000)
METHODS = ("auto", "permutation", "stratified", "shap KernelExplainer")
TARGETS = {50: (0.01, 0.003), 100: (0.01, 0.003)}


def measure(run) -> tuple[object, float, int]:
    """``run()``'s result, wall seconds and peak traced memory in bytes."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = run()
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, seconds, peak


def shap_values(game, budget: int, seed: int) -> np.ndarray:
    shap = warm_up_shap()
    n = game.n_players
    counter = DistinctCounter(game.utility, n)
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        explainer = shap.KernelExplainer(counter, np.zeros((1, n)))
        values = explainer.shap_values(np.ones((1, n)), nsamples=budget - 2, l1_reg=False, silent=True)
    finally:
        np.random.set_state(state)
    return np.asarray(values, dtype=float).reshape(-1)[:n]


def typed_rounds(sizes, budgets, seeds, methods) -> list[dict]:
    rows = []
    for n in sizes:
        started = time.perf_counter()
        typed = simulate_typed_round(TYPES[n], seed=0, validation_size=ROWS.get(n, 3000))
        exact = typed.exact_values()
        game = typed.game
        print(f"n={n}: types {TYPES[n]}, exact values in {time.perf_counter() - started:.1f} s", flush=True)
        if "auto" in methods:  # cold: the first estimate of a round also builds and values its surrogate
            fresh = simulate_typed_round(TYPES[n], seed=0, validation_size=ROWS.get(n, 3000)).game
            rows.append({**_one(fresh, exact, n, budgets[-1], "auto", 0), "method": "auto (cold)"})
            print(f"  auto (cold)            budget {budgets[-1]:>7,d} seed 0: error {rows[-1]['rel_error']:.5f}"
                  f"  {rows[-1]['seconds']:7.1f} s  {rows[-1]['peak_mib']:7.0f} MiB", flush=True)
        for budget in budgets:
            for method in methods:
                # The peers at n = 1,000 take minutes per estimate: one seed each.
                for seed in seeds if method == "auto" or n < 1000 else seeds[:1]:
                    rows.append(_one(game, exact, n, budget, method, seed))
                    print(f"  {method:<22} budget {budget:>7,d} seed {seed}: error {rows[-1]['rel_error']:.5f}"
                          f"  {rows[-1]['seconds']:7.1f} s  {rows[-1]['peak_mib']:7.0f} MiB", flush=True)
    return rows


def _one(game, exact, n, budget, method, seed) -> dict:
    if method == "shap KernelExplainer":
        values, seconds, peak = measure(lambda: shap_values(game, budget, seed))
        coverage = None
    else:
        result, seconds, peak = measure(lambda: estimate(game, method=method, budget=budget, seed=seed))
        values = result.values
        coverage = float(np.mean((result.ci_low <= exact) & (exact <= result.ci_high)))
    return {"n": n, "budget": budget, "method": method, "seed": seed, "rel_error": relative_l2_error(values, exact),
            "coverage": coverage, "seconds": seconds, "peak_mib": peak / 2**20}


def many_rounds(seeds, budget=100_000) -> dict:
    run = simulate_typed_run([60, 40], rounds=50, participation=0.8, seed=0)
    exact = run.exact_values()
    game = run.game
    records = []
    for seed in seeds:
        result, seconds, peak = measure(lambda: estimate(game, method="auto", budget=budget, seed=seed))
        per_round = np.array(result.metadata["round_evaluations"])
        absent_values = [np.abs(np.delete(result.per_round[t], members)).max(initial=0.0)
                         for t, members in enumerate(run.round_members)]
        moved = np.abs([r.game.utility(np.ones((1, r.n_players), bool))[0] - r.game.utility(np.zeros((1, r.n_players), bool))[0]
                        for r in run.rounds])
        records.append({
            "seed": seed, "budget": budget, "evaluations": result.evaluations, "rel_error": relative_l2_error(result.values, exact),
            "coverage": float(np.mean((result.ci_low <= exact) & (exact <= result.ci_high))),
            "round_evaluations_min": int(per_round.min()), "round_evaluations_max": int(per_round.max()),
            "correlation_with_utility_moved": float(np.corrcoef(per_round, moved)[0, 1]),
            "largest_value_of_an_absent_participant": float(max(absent_values)),
            "seconds": seconds, "peak_mib": peak / 2**20,
        })
        r = records[-1]
        print(f"  seed {seed}: {r['evaluations']:,d} of {budget:,d} evaluations, rounds got {r['round_evaluations_min']}"
              f"..{r['round_evaluations_max']}, error {r['rel_error']:.5f}, coverage {r['coverage']:.2f}, {seconds:.1f} s", flush=True)
    return {"rounds": 50, "participants": 100, "participation": 0.8, "records": records}


def summarise(rows) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["n"], row["budget"], row["method"]), []).append(row)
    summary = []
    for (n, budget, method), group in sorted(groups.items()):
        coverage = [g["coverage"] for g in group if g["coverage"] is not None]
        summary.append({
            "n": n, "budget": budget, "method": method,
            "median_rel_error": float(np.median([g["rel_error"] for g in group])),
            "coverage": float(np.mean(coverage)) if coverage else None,
            "median_seconds": float(np.median([g["seconds"] for g in group])),
            "max_peak_mib": float(max(g["peak_mib"] for g in group)),
        })
    return summary


def targets_of(summary) -> list[dict]:
    table = {(s["n"], s["budget"], s["method"]): s for s in summary}
    targets = []
    for n, limits in TARGETS.items():
        for budget, limit in zip(BUDGETS, limits):
            if (n, budget, "auto") in table:
                cell = table[(n, budget, "auto")]
                targets.append(_target(f"n={n} budget {budget:,d}: auto error", cell["median_rel_error"], limit, "<="))
                targets.append(_target(f"n={n} budget {budget:,d}: auto interval coverage", cell["coverage"], 0.9, ">="))
    if (1000, 100_000, "auto (cold)") in table:
        cell = table[(1000, 100_000, "auto (cold)")]
        targets.append(_target("n=1000 budget 100,000: auto seconds, cold (one core)", cell["median_seconds"], 60.0, "<="))
        targets.append(_target("n=1000 budget 100,000: auto peak GiB, cold", cell["max_peak_mib"] / 1024, 2.0, "<="))
    if (1000, 100_000, "auto") in table:
        cell = table[(1000, 100_000, "auto")]
        targets.append(_target("n=1000 budget 100,000: auto error", cell["median_rel_error"], 0.01, "<="))
    for n in sorted({s["n"] for s in summary}):
        for budget in BUDGETS:
            ours, shap = table.get((n, budget, "auto")), table.get((n, budget, "shap KernelExplainer"))
            if ours and shap:
                targets.append(_target(f"n={n} budget {budget:,d}: auto error / shap KernelExplainer error",
                                       ours["median_rel_error"] / shap["median_rel_error"], 1.0, "<="))
    return targets


def _target(name, measured, limit, sense) -> dict:
    passed = bool(measured <= limit) if sense == "<=" else bool(measured >= limit)
    return {"target": name, "measured": float(measured), "limit": limit, "sense": sense, "passed": passed}


def print_report(summary, targets) -> None:
    print("\nTyped rounds: median relative L2 error vs exact, coverage of 95 % intervals, median time, peak memory")
    header = f"{'n':>5} {'budget':>8} {'method':<22} {'error':>9} {'coverage':>8} {'seconds':>8} {'peak MiB':>9}"
    print(header)
    print("-" * len(header))
    for s in summary:
        coverage = "" if s["coverage"] is None else f"{s['coverage']:.2f}"
        print(f"{s['n']:>5} {s['budget']:>8,d} {s['method']:<22} {s['median_rel_error']:>9.5f} {coverage:>8} "
              f"{s['median_seconds']:>8.1f} {s['max_peak_mib']:>9.0f}")
    print("\nTargets")
    for t in targets:
        print(f"  [{'PASS' if t['passed'] else 'FAIL'}] {t['target']}: {t['measured']:.4g} (target {t['sense']} {t['limit']:.4g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n <= 100, one seed, budget 10^4 only, no black-box peers")
    parser.add_argument("--sizes", type=int, nargs="*", default=None, choices=sorted(TYPES))
    parser.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default 3)")
    parser.add_argument("--methods", nargs="*", default=None, choices=METHODS)
    parser.add_argument("--skip", nargs="*", default=(), choices=("typed", "rounds", "black-box"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    sizes = args.sizes or ([20, 50, 100] if args.quick else sorted(TYPES))
    budgets = BUDGETS[:1] if args.quick else BUDGETS
    started = time.perf_counter()
    report = {"generated_by": " ".join(["benchmarks/valuation_scale.py", *sys.argv[1:]]),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "versions": {"python": platform.python_version(), "numpy": np.__version__}}
    if "typed" not in args.skip:
        rows = typed_rounds(sizes, budgets, seeds, args.methods or METHODS)
        report["typed_rows"] = rows
        report["typed_summary"] = summarise(rows)
        report["targets"] = targets_of(report["typed_summary"])
        print_report(report["typed_summary"], report["targets"])
    if "rounds" not in args.skip:
        print("\nMany rounds: 50 rounds x 100 participants, budget 100,000", flush=True)
        report["many_rounds"] = many_rounds(seeds)
    if "black-box" not in args.skip and not args.quick:
        from valuation_blackbox import print_blackbox, run_blackbox

        print("\nBlack-box games", flush=True)
        report["black_box"] = run_blackbox(seeds=list(range(max(len(seeds), 8))))
        print_blackbox(report["black_box"])
    report["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} in {report['seconds']:.0f} s")


if __name__ == "__main__":
    main()
