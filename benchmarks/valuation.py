"""Valuation engine against its peers and against the elementwise limit, in one run.

    .venv/bin/python benchmarks/valuation.py [--quick] [--no-peers] [--seeds N]

Games: a unanimity game (interactions up to order 3), a weighted voting game, an airport
game (n = 10 each) and one round of a simulated 10-factory FL run (factory-00 has flipped
labels, factory-01 noisy sensors) under -log-loss and under accuracy. Budgets: 5, 10, 25
and 50 % of the 2^n coalitions, counted as distinct coalitions for every estimator.
Peers: shap KernelExplainer (l1_reg=False) and PermutationExplainer in this process;
shapiq and pyDVL (numpy<2) in benchmarks/.venv-peers, built on first use from
benchmarks/requirements-peers.txt and driven through benchmarks/valuation_peers.py.
Scale: exact valuation for n = 10..20 next to the bare elementwise cost of the metric.
Prints the tables and the targets, writes benchmarks/results/valuation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread for every estimator, here and in the peer process: on a small,
# shared machine, multi-threaded BLAS on small matrices loses 3-4x to contention, and
# equal settings keep the timings comparable.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from valuation_common import DistinctCounter, relative_l2_error  # noqa: E402

from valuation.engine import AirportGame, UnanimityGame, WeightedVotingGame, estimate  # noqa: E402
from valuation.engine.cache import masks_from_keys  # noqa: E402
from valuation.engine.estimators.kernel import warm_up_shap  # noqa: E402
from valuation.engine.simulate import simulate_consortium, simulate_training_run  # noqa: E402

BUDGET_FRACTIONS = (0.05, 0.10, 0.25, 0.50)
OUR_METHODS = ("auto", "stratified", "permutation", "tmc")
SHAP_PEERS = ("shap KernelExplainer", "shap PermutationExplainer")
ENV_PEERS = (
    "shapiq KernelSHAP",
    "shapiq UnbiasedKernelSHAP",
    "shapiq SVARM",
    "pyDVL permutation",
    "pyDVL antithetic",
    "pyDVL TMC",
)
PEER_ENV = HERE / ".venv-peers"
RESULTS = HERE / "results" / "valuation.json"
FLIPPED_FACTORY = 0
FL_ROUND = 1  # the second round: the first starts from an all-zero model


def build_games(workdir: Path) -> list[dict]:
    consortium = simulate_consortium(n_factories=10, seed=0)
    run = simulate_training_run(consortium, rounds=2, seed=0)
    games = [
        {"name": "unanimity", "kind": "black-box", "game": UnanimityGame.random(10, max_order=3, n_terms=20, seed=3)},
        {"name": "voting", "kind": "black-box", "game": WeightedVotingGame([1, 1, 2, 2, 3, 3, 4, 5, 6, 8], quota=18)},
        {"name": "airport", "kind": "black-box", "game": AirportGame([9.0, 1.0, 4.0, 2.5, 7.0, 3.0, 8.0, 5.5, 6.0, 10.0])},
    ]
    for metric in ("neg_log_loss", "accuracy"):
        game = run.round_game(FL_ROUND, consortium=consortium, metric=metric)
        path = workdir / f"fl_{metric}.npz"
        np.savez(
            path, n_players=10, metric=metric, coef=game.global_weights["coef"], intercept=game.global_weights["intercept"],
            update_coef=game.updates["coef"], update_intercept=game.updates["intercept"], num_examples=game.num_examples,
            X=game.X, y=game.y,
        )
        games.append({"name": f"FL {metric}", "kind": "fl", "game": game, "npz": str(path)})
    all_coalitions = masks_from_keys(np.arange(2**10), 10)
    for entry in games:
        entry["table"] = entry["game"].utility(all_coalitions)
        entry["exact"] = estimate(entry["game"], method="exact").values
    return games


def ensure_peer_env() -> Path | None:
    python = PEER_ENV / "bin" / "python"
    if python.exists():
        return python
    print(f"building {PEER_ENV.relative_to(ROOT)} from requirements-peers.txt (first run only) ...", flush=True)
    started = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(PEER_ENV)], check=True)
        subprocess.run([str(python), "-m", "ensurepip", "--upgrade"], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements-peers.txt")],
                       check=True, capture_output=True, text=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"  could not build the peer environment ({exc}); shapiq and pyDVL are skipped")
        print(getattr(exc, "stderr", "") or "")
        return None
    print(f"  built in {time.perf_counter() - started:.0f} s")
    return python


def run_ours(games, budgets, seeds) -> list[dict]:
    records = []
    for entry in games:
        for method in OUR_METHODS:
            estimate(entry["game"], method=method, budget=budgets[0.05], seed=10_000)  # warm-up
            for fraction, budget in budgets.items():
                for seed in seeds:
                    started = time.perf_counter()
                    result = estimate(entry["game"], method=method, budget=budget, seed=seed)
                    seconds = time.perf_counter() - started
                    records.append(_record(f"ours {method}", entry, fraction, budget, seed, result.values, result.evaluations, seconds, result.method))
    return records


def run_shap(games, budgets, seeds) -> list[dict]:
    shap = warm_up_shap()
    records = []
    for entry in games:
        for peer in SHAP_PEERS:
            _shap_values(shap, peer, _counter(entry), budgets[0.05], 10_000)  # warm-up (numba for Permutation)
            for fraction, budget in budgets.items():
                for seed in seeds:
                    counter = _counter(entry)
                    started = time.perf_counter()
                    values = _shap_values(shap, peer, counter, budget, seed)
                    seconds = time.perf_counter() - started
                    records.append(_record(peer, entry, fraction, budget, seed, values, counter.distinct, seconds))
    return records


def _counter(entry) -> DistinctCounter:
    if entry["kind"] == "fl":
        return DistinctCounter(entry["game"].utility, 10)
    return DistinctCounter.from_table(entry["table"])


def _shap_values(shap, peer, counter, budget, seed) -> np.ndarray:
    n = counter.n_players
    state = np.random.get_state()  # both explainers use numpy's global generator
    try:
        np.random.seed(seed)
        if peer == "shap KernelExplainer":
            explainer = shap.KernelExplainer(counter, np.zeros((1, n)))
            values = explainer.shap_values(np.ones((1, n)), nsamples=budget - 2, l1_reg=False, silent=True)
            return np.asarray(values, dtype=float).reshape(-1)[:n]
        explainer = shap.PermutationExplainer(counter, np.zeros((1, n)), seed=seed)
        return np.asarray(explainer(np.ones((1, n)), max_evals=budget, silent=True).values, dtype=float).reshape(-1)[:n]
    finally:
        np.random.set_state(state)


def run_env_peers(python: Path, games, budgets, seeds, workdir: Path) -> tuple[list[dict], dict]:
    job = {
        "methods": list(ENV_PEERS),
        "games": [{"name": e["name"], **({"npz": e["npz"]} if e["kind"] == "fl" else {"table": e["table"].tolist()})} for e in games],
        "budgets": list(budgets.values()),
        "seeds": list(seeds),
    }
    job_path, out_path = workdir / "peers_job.json", workdir / "peers_out.json"
    job_path.write_text(json.dumps(job))
    environment = dict(os.environ)
    subprocess.run([str(python), str(HERE / "valuation_peers.py"), str(job_path), str(out_path)], check=True, env=environment)
    output = json.loads(out_path.read_text())
    by_name = {e["name"]: e for e in games}
    fraction_of = {b: f for f, b in budgets.items()}
    records = []
    for row in output["results"]:
        entry = by_name[row["game"]]
        values = None if row["values"] is None else np.array(row["values"])
        records.append(_record(row["method"], entry, fraction_of[row["budget"]], row["budget"], row["seed"], values, row["evaluations"], row["seconds"], error=row["error"]))
    return records, output["versions"]


def _record(estimator, entry, fraction, budget, seed, values, evaluations, seconds, resolved=None, error=None) -> dict:
    record = {"estimator": estimator, "game": entry["name"], "kind": entry["kind"], "fraction": fraction, "budget": budget,
              "seed": seed, "evaluations": int(evaluations), "seconds": float(seconds), "error": error}
    if resolved:
        record["resolved_method"] = resolved
    if values is not None:
        exact, total = entry["exact"], float(entry["table"][-1] - entry["table"][0])
        record.update({
            "rel_error": relative_l2_error(values, exact),
            "spearman": float(spearmanr(values, exact).correlation),
            "flipped_lowest": bool(int(np.argmin(values)) == FLIPPED_FACTORY) if entry["kind"] == "fl" else None,
            "efficiency_gap": abs(float(np.sum(values)) - total),
        })
    return record


def summarise(records: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault((record["game"], record["estimator"], record["fraction"]), []).append(record)
    rows = []
    for (game, estimator, fraction), group in groups.items():
        ok = [r for r in group if "rel_error" in r]
        errors = np.array([r["rel_error"] for r in ok]) if ok else np.array([np.nan])
        rows.append({
            "game": game, "kind": group[0]["kind"], "estimator": estimator, "fraction": fraction, "budget": group[0]["budget"],
            "median_rel_error": float(np.median(errors)), "p90_rel_error": float(np.percentile(errors, 90)),
            "median_spearman": float(np.median([r["spearman"] for r in ok])) if ok else float("nan"),
            "flipped_lowest_share": float(np.mean([r["flipped_lowest"] for r in ok])) if ok and group[0]["kind"] == "fl" else None,
            "max_efficiency_gap": float(max(r["efficiency_gap"] for r in ok)) if ok else float("nan"),
            "median_evaluations": float(np.median([r["evaluations"] for r in group])),
            "median_seconds": float(np.median([r["seconds"] for r in group])),
            "failures": sum(1 for r in group if r["error"]),
        })
    return rows


def measure_scale(sizes) -> list[dict]:
    rows = []
    for n in sizes:
        consortium = simulate_consortium(n_factories=n, seed=0, validation_size=3000)
        game = simulate_training_run(consortium, rounds=2, seed=0).round_game(1, consortium=consortium, metric="neg_log_loss")
        started = time.perf_counter()
        estimate(game, method="exact")
        exact_seconds = time.perf_counter() - started
        rows.append({"n": n, "coalitions": 2**n, "rows": 3000, "exact_seconds": exact_seconds,
                     "elementwise_seconds": _elementwise_limit(n, game._rows_per_chunk())})
        rows[-1]["ratio"] = rows[-1]["exact_seconds"] / rows[-1]["elementwise_seconds"]
        print(f"  n={n:2d}: exact {exact_seconds:7.2f} s, elementwise limit {rows[-1]['elementwise_seconds']:7.2f} s", flush=True)
    return rows


def _elementwise_limit(n: int, rows: int) -> float:
    """The least numpy can do: mean log-loss of every coalition's 3,000 precomputed,
    sign-folded logits (exp, log1p, row sum; in place, chunked like the engine)."""
    logits = np.random.default_rng(0).normal(size=(rows, 3000))
    buffer = np.empty_like(logits)
    started = time.perf_counter()
    for _ in range(0, 2**n, rows):
        np.exp(logits, out=buffer)
        np.log1p(buffer, out=buffer)
        buffer.sum(axis=1)
    return time.perf_counter() - started


def evaluate_targets(rows: list[dict], scale: list[dict]) -> list[dict]:
    table = {(r["game"], r["estimator"], r["fraction"]): r for r in rows}
    games = sorted({r["game"] for r in rows})
    ours = [f"ours {m}" for m in OUR_METHODS]
    peers = sorted({r["estimator"] for r in rows} - set(ours))
    targets = []

    def best(game, fraction, names):
        candidates = [(table[(game, e, fraction)]["median_rel_error"], e) for e in names if (game, e, fraction) in table]
        candidates = [c for c in candidates if np.isfinite(c[0])]
        return min(candidates) if candidates else (float("nan"), "none")

    for game in games:
        kind = next(r["kind"] for r in rows if r["game"] == game)
        for fraction in BUDGET_FRACTIONS:
            our_error, our_name = best(game, fraction, ours)
            peer_error, peer_name = best(game, fraction, peers)
            if kind == "fl" and fraction in (0.10, 0.25):
                targets.append(_target(f"{game} @{fraction:.0%}: our error <= 0.25 x best peer", our_error / peer_error, 0.25, "<=",
                                       f"{our_name} {our_error:.4f} vs {peer_name} {peer_error:.4f}"))
            if kind == "black-box":
                targets.append(_target(f"{game} @{fraction:.0%}: our error <= 1.10 x best peer", our_error / peer_error, 1.10, "<=",
                                       f"{our_name} {our_error:.4f} vs {peer_name} {peer_error:.4f}"))
        if kind == "fl":
            _, our_name = best(game, 0.25, ours)
            spearman = table[(game, our_name, 0.25)]["median_spearman"]
            targets.append(_target(f"{game} @25%: Spearman of {our_name}", spearman, 0.98, ">=", ""))
            share = table[(game, "ours auto", 0.10)]["flipped_lowest_share"]
            targets.append(_target(f"{game} @10%: flipped-label factory lowest (ours auto)", share, 0.95, ">=", "share of seeds"))
    # Speed per budget and per kind of game: black-box utilities are nearly free, so
    # their times are pure estimator overhead; FL utilities cost the same for everyone
    # (every estimator calls the same FLRoundGame.utility), so they dilute the ratio.
    for fraction in BUDGET_FRACTIONS:
        for kind in ("black-box", "fl"):
            cells = [r for r in rows if r["kind"] == kind and r["fraction"] == fraction]
            ours_time = np.median([r["median_seconds"] for r in cells if r["estimator"] == "ours auto"])
            for peer, limit in (("shap KernelExplainer", 1 / 3), ("pyDVL", 1 / 10)):
                names = [p for p in peers if p.startswith(peer)]
                if not names:
                    continue
                peer_time = min(np.median([r["median_seconds"] for r in cells if r["estimator"] == name]) for name in names)
                targets.append(_target(f"speed {kind} @{fraction:.0%}: ours auto / fastest {peer}", ours_time / peer_time, limit, "<=",
                                       f"{ours_time * 1e3:.2f} ms vs {peer_time * 1e3:.2f} ms"))
    largest = max(scale, key=lambda r: r["n"])
    targets.append(_target(f"exact n={largest['n']}: time / elementwise limit", largest["ratio"], 2.0, "<=",
                           f"{largest['exact_seconds']:.1f} s vs {largest['elementwise_seconds']:.1f} s"))
    return targets


def _target(name, measured, limit, sense, detail) -> dict:
    passed = bool(measured <= limit) if sense == "<=" else bool(measured >= limit)
    return {"target": name, "measured": float(measured), "limit": limit, "sense": sense, "passed": passed, "detail": detail}


def print_report(rows, scale, targets) -> None:
    print("\nAccuracy (median / p90 relative L2 error vs exact, median Spearman) and warm time per estimate")
    header = f"{'game':<16} {'estimator':<28} {'budget':>6} {'evals':>6} {'median':>8} {'p90':>8} {'spearman':>8} {'flip':>5} {'eff.gap':>8} {'ms':>8}"
    print(header)
    print("-" * len(header))
    for row in sorted(rows, key=lambda r: (r["game"], r["fraction"], r["median_rel_error"])):
        flip = "" if row["flipped_lowest_share"] is None else f"{row['flipped_lowest_share']:.0%}"
        print(f"{row['game']:<16} {row['estimator']:<28} {row['budget']:>6} {row['median_evaluations']:>6.0f} "
              f"{row['median_rel_error']:>8.4f} {row['p90_rel_error']:>8.4f} {row['median_spearman']:>8.3f} {flip:>5} "
              f"{row['max_efficiency_gap']:>8.1e} {row['median_seconds'] * 1e3:>8.2f}" + (f"  ({row['failures']} failed)" if row["failures"] else ""))
    print("\nScale: exact valuation (logistic, 3,000 validation rows) vs the elementwise limit")
    for row in scale:
        print(f"  n={row['n']:2d} {row['coalitions']:>9,d} coalitions: exact {row['exact_seconds']:7.2f} s, limit {row['elementwise_seconds']:7.2f} s, ratio {row['ratio']:.2f}")
    print("\nTargets")
    for target in targets:
        verdict = "PASS" if target["passed"] else "FAIL"
        print(f"  [{verdict}] {target['target']}: {target['measured']:.4g} (target {target['sense']} {target['limit']:.4g}) {target['detail']}")
    print(f"\n{sum(t['passed'] for t in targets)} of {len(targets)} targets met")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 seeds, scale up to n=18")
    parser.add_argument("--no-peers", action="store_true", help="skip shapiq and pyDVL (no peer environment)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default 5)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seeds = list(range(args.seeds or (2 if args.quick else 5)))
    budgets = {f: int(round(f * 2**10)) for f in BUDGET_FRACTIONS}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        games = build_games(workdir)
        versions = {"python": platform.python_version(), "numpy": np.__version__}
        print(f"games built; ours and shap on {len(games)} games x {len(budgets)} budgets x {len(seeds)} seeds ...", flush=True)
        records = run_ours(games, budgets, seeds) + run_shap(games, budgets, seeds)
        if not args.no_peers and (python := ensure_peer_env()) is not None:
            print("shapiq and pyDVL in the peer environment ...", flush=True)
            peer_records, peer_versions = run_env_peers(python, games, budgets, seeds, workdir)
            records += peer_records
            versions["peers"] = peer_versions
    print("scale ...", flush=True)
    scale = measure_scale((10, 14, 16, 18) if args.quick else (10, 14, 16, 18, 20))
    rows = summarise(records)
    targets = evaluate_targets(rows, scale)
    print_report(rows, scale, targets)
    import shap

    versions["shap"] = shap.__version__
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"generated_by": "benchmarks/valuation.py" + (" --quick" if args.quick else ""), "seconds": time.perf_counter() - started,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "versions": versions,
              "budgets": budgets, "seeds": seeds, "summary": rows, "scale": scale, "targets": targets}
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} in {report['seconds']:.0f} s total")


if __name__ == "__main__":
    main()
