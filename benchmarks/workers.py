"""Valuation runs on Celery workers: one worker against two, and the distributed path
against the engine in-process, in one run.

    PYTHONPATH=. .venv/bin/python benchmarks/workers.py [--quick] [--repeat N] [--rows M] [--keep]

Needs PostgreSQL and Redis. Uses the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/postgres) but never its database: it drops and creates
the scratch database ``fairshare_bench_workers``, migrates it, and drops it at the end
(``--keep`` leaves it). The broker is Redis database 6 of WORKERS_BENCH_REDIS (default
redis://127.0.0.1:6379), flushed before and after; payloads go to a temporary MEDIA_ROOT
that the workers share. Workers are real ``celery -A config worker --concurrency=1``
subprocesses (one BLAS thread each), started and killed here, process group and all.

1. Speed-up: the same CPU-bound valuation (exact, 16 participants x 6 rounds of a logistic
   model, ``--rows`` validation rows, so that utility evaluation dominates) with one worker
   process and with two, runs alternating; the time runs from ``valuation_run_start``
   (in a transaction, as the API calls it) to the run's ``finished_at``. The scores of
   every run must be identical. Target: speed-up >= 1.7x on a 2-core machine.
2. Overhead: small runs of 12 participants x 3 rounds (exact, 2^12 coalitions a round,
   one chunk each; stratified with a budget of 2,000 a round) on one worker, against the
   engine called in-process on the same arrays (games built and valued, ``estimate`` on a
   ``MultiRoundGame``), and against the service path run eagerly in this process (same
   database, no broker), which separates the cost of Celery from that of the database.
   Target: distributed / in-process <= 1.5x. Tiny runs (8 participants x 3 rounds, some
   milliseconds in-process) are measured the same way to show the fixed cost of a run
   (request, planning, a task per chunk, the finishing step and its ledger entry, each a
   committed transaction): the target is out of their reach by construction, and the
   printout gives that fixed cost and the in-process time from which a run meets 1.5x.

Each run's time is split into phases from the workers' timestamps (until planned, chunks,
finishing step), next to the busy share of the machine's cores meanwhile. Medians of
``--repeat`` repetitions; the machine may be shared, so before each speed-up pair it also
measures what two bare numpy processes reach here at that moment (the ceiling). Prints the tables, writes benchmarks/results/workers.json, and exits
1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# One BLAS thread everywhere (this process and the workers, which inherit the environment):
# the measurement is about processes, and on two cores threaded BLAS only adds contention.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import numpy as np  # noqa: E402
from scratch import (  # noqa: E402
    base_versions,
    exit_cleanly_on_signals,
    npz,
    postgres_urls,
    results_finish,
    results_header,
    scratch_database_create,
    scratch_database_drop,
    service_environment,
)

RESULTS = HERE / "results" / "workers.json"
DATABASE = "fairshare_bench_workers"
REDIS_DB = 6
FEATURES = 8
SPEEDUP_TARGET = 1.7
OVERHEAD_TARGET = 1.5
LARGE = {"participants": 16, "rounds": 6, "method": "exact"}
# Training runs for the overhead (participants x rounds), and the valuations timed on them:
# exact with 2^8 and 2^12 coalitions a round (one chunk each), and stratified with a budget
# well below the 2^8 coalitions of a round.
SMALL_RUNS = {"tiny": (8, 3), "small": (12, 3)}
OVERHEAD_CASES = [("tiny", "exact", None), ("tiny", "stratified", 3 * 60), ("small", "exact", None),
                  ("small", "stratified", 3 * 2000)]
# Runs that the overhead target applies to; the tiny ones measure the fixed cost of a run.
TARGET_RUNS = ("small",)


# --- set-up -------------------------------------------------------------------------------------


def _urls() -> tuple[str, str, str]:
    maintenance, url = postgres_urls(DATABASE, "benchmarks/workers.py")
    redis = os.environ.get("WORKERS_BENCH_REDIS", "redis://127.0.0.1:6379").rstrip("/")
    return maintenance, url, urlunsplit(urlsplit(redis)._replace(path=f"/{REDIS_DB}"))


def _flush_broker(broker_url: str) -> None:
    import redis

    redis.Redis.from_url(broker_url).flushdb()


def _training_run(*, actor, consortium, name: str, participants, rounds: int, rows: int, seed: int):
    """A logistic training run with ``rounds`` rounds of updates from every participant and a
    validation set of ``rows`` rows (the upload_rounds fixture of tests/valuation/runs, larger);
    returns it with the arrays that went in, for the in-process engine."""
    from valuation.services import global_weights_upload, training_run_create, update_upload, validation_set_upload

    spec = [{"name": "coef", "shape": [FEATURES], "dtype": "float64"},
            {"name": "intercept", "shape": [], "dtype": "float64"}]
    training_run = training_run_create(actor=actor, consortium=consortium, name=name, model_family="logistic",
                                       task="binary", metric="neg_log_loss", parameter_spec=spec)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, FEATURES))
    y = (X @ rng.normal(size=FEATURES) + rng.normal(scale=0.5, size=rows) > 0).astype(np.float64)
    validation_set_upload(actor=actor, training_run=training_run, data=npz(X=X, y=y))
    arrays = {"X": X, "y": y, "rounds": []}
    coef, intercept = np.zeros(FEATURES), np.float64(0.0)
    for t in range(rounds):
        global_weights_upload(actor=actor, training_run=training_run, round=t,
                              data=npz(coef=coef, intercept=intercept))
        updates = []
        for participant in participants:
            update = {"coef": rng.normal(scale=0.3, size=FEATURES), "intercept": np.float64(rng.normal(scale=0.1))}
            count = int(rng.integers(20, 200))
            update_upload(actor=actor, training_run=training_run, round=t, participant=participant,
                          data=npz(**update), num_examples=count)
            updates.append((participant.slug, update, count))
        arrays["rounds"].append({"global": {"coef": coef, "intercept": intercept}, "updates": updates})
        coef = coef + rng.normal(scale=0.2, size=FEATURES)
    return training_run, arrays


def _seed(rows: int):
    from consortium.access import Principal
    from consortium.audit import system_principal
    from consortium.services import api_key_create, consortium_create

    slugs = [f"plant-{i:02d}" for i in range(LARGE["participants"])]
    consortium = consortium_create(actor=system_principal(), slug="bench", name="Benchmark consortium",
                                   participants=[(slug, slug) for slug in slugs])
    key, _ = api_key_create(actor=system_principal(), consortium=consortium, name="benchmark",
                            scopes=["ingest", "validation", "valuation"])
    actor = Principal(api_key=key)
    participants = list(consortium.participants.order_by("slug"))
    runs = {"large": _training_run(actor=actor, consortium=consortium, name="large", participants=participants,
                                   rounds=LARGE["rounds"], rows=rows, seed=1)}
    for seed, (name, (size, rounds)) in enumerate(SMALL_RUNS.items(), start=2):
        runs[name] = _training_run(actor=actor, consortium=consortium, name=name, participants=participants[:size],
                                   rounds=rounds, rows=rows, seed=seed)
    return actor, runs


# --- workers ------------------------------------------------------------------------------------


class Workers:
    """``celery -A config worker`` subprocesses, each in its own process group."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        log = open(self.logdir / f"{name}.log", "ab")
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=1", "--pool=prefork",
                   "--loglevel=WARNING", f"--hostname={name}@%h", "--without-gossip", "--without-mingle"]
        self.processes[name] = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)
        log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        from celery import current_app

        wanted = {f"{name}@{socket.gethostname()}" for name in self.processes}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"worker {name} exited with {process.returncode}; see {self.logdir / name}.log")
            answered = {host for reply in current_app.control.ping(timeout=0.5) for host in reply}
            if wanted <= answered:
                return
        raise RuntimeError(f"workers {sorted(wanted)} did not answer a ping within {timeout:.0f} s")

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


# --- runs ---------------------------------------------------------------------------------------


def _cpu_times() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat (as in benchmarks/ledger.py)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + fields[4]  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def _valued(actor, training_run, *, method: str, budget: int | None = None, seed: int = 7,
            timeout: float = 900.0) -> dict:
    """Start a run as the API does (in a transaction; the task is enqueued on commit) and wait for
    it. Seconds from the request to the worker's ``finished_at`` (same machine, same clock), and
    the busy share of the machine's cores meanwhile (workers, PostgreSQL, Redis, this process,
    and whatever else runs here)."""
    from django.db import transaction

    from valuation.models import ValuationRun
    from valuation.services import valuation_run_start

    busy_before, total_before = _cpu_times()
    started = time.time()
    with transaction.atomic():
        run = valuation_run_start(actor=actor, training_run=training_run, method=method, budget=budget, seed=seed)
    polling = time.monotonic()
    while True:
        status = ValuationRun.objects.filter(pk=run.pk).values_list("status", flat=True).get()
        if status not in (ValuationRun.Status.QUEUED, ValuationRun.Status.RUNNING):
            break
        waited = time.monotonic() - polling
        if waited > timeout:
            raise RuntimeError(f"valuation run {run.pk} still {status} after {timeout:.0f} s")
        # The time is read from the run's finished_at, so polling can slow down as the run goes
        # on and leave the cores to the workers: from 10 ms to 250 ms between looks.
        time.sleep(min(0.25, max(0.01, waited / 40)))
    busy_after, total_after = _cpu_times()
    run.refresh_from_db()
    if run.status != ValuationRun.Status.SUCCEEDED:
        raise RuntimeError(f"valuation run {run.pk} {run.status}: {run.error_message}")
    return {**_describe(run, started=started),
            "machine_busy": (busy_after - busy_before) / max(total_after - total_before, 1e-9)}


def _describe(run, *, started: float, seconds: float | None = None) -> dict:
    """What a finished run took and produced. ``phases`` splits its wall time from the worker's
    timestamps: request to planned (queueing, planning), planned to the last chunk's end
    (the chunks), and the last chunk's end to the run's end (the finishing step)."""
    from ledger.models import LedgerEntry

    scores = {score.participant.slug: (score.value, score.stderr)
              for score in run.scores.select_related("participant")}
    entries = LedgerEntry.objects.filter(reference_type="valuation_run", reference_id=str(run.pk)).count()
    last_chunk = max(run.chunks.values_list("finished_at", flat=True)).timestamp()
    planned, finished = run.started_at.timestamp(), run.finished_at.timestamp()
    return {"id": str(run.pk), "seconds": finished - started if seconds is None else seconds,
            "phases": {"plan": planned - started, "chunks": last_chunk - planned, "finish": finished - last_chunk},
            "chunks": run.chunks.count(), "evaluations": run.evaluations,
            "ledger_entries": entries, "input_digest": run.input_digest, "scores": scores}


def _eager(actor, training_run, *, method: str, budget: int | None = None, seed: int = 7) -> dict:
    """The same service path run in this process (no broker), as the embedded default runs it."""
    from celery import current_app
    from django.db import transaction

    from valuation.models import ValuationRun
    from valuation.services import valuation_run_start

    conf = current_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, True
    try:
        started, clock = time.time(), time.perf_counter()
        with transaction.atomic():
            run = valuation_run_start(actor=actor, training_run=training_run, method=method, budget=budget, seed=seed)
        seconds = time.perf_counter() - clock  # the tasks ran on commit, inside the block's exit
    finally:
        conf.task_always_eager, conf.task_eager_propagates = saved
    run = ValuationRun.objects.get(pk=run.pk)
    assert run.status == ValuationRun.Status.SUCCEEDED, (run.status, run.error_message)
    return _describe(run, started=started, seconds=seconds)


def _in_process(arrays: dict, *, method: str, budget: int | None = None, seed: int = 7) -> dict:
    """The engine alone: the round games built from the arrays in memory and valued at once."""
    from valuation.engine import FLRoundGame, MultiRoundGame, estimate

    started = time.perf_counter()
    games = [
        FLRoundGame(family="logistic", task="binary", metric="neg_log_loss", global_weights=r["global"],
                    updates=[update for _, update, _ in r["updates"]], num_examples=[n for _, _, n in r["updates"]],
                    X=arrays["X"], y=arrays["y"], participants=[slug for slug, _, _ in r["updates"]])
        for r in arrays["rounds"]
    ]
    game = MultiRoundGame(rounds=games)
    result = estimate(game, method=method, budget=budget, seed=seed)
    seconds = time.perf_counter() - started
    values = dict(zip(game.players, result.values.tolist()))
    return {"seconds": seconds, "evaluations": result.evaluations,
            "scores": {slug: (values[slug], None) for slug in sorted(values)}}


def _timing(run: dict) -> str:
    phases = run["phases"]
    return (f"{run['seconds']:7.2f} s (plan {phases['plan']:.2f}, chunks {phases['chunks']:.2f}, "
            f"finish {phases['finish']:.2f}; cores {run['machine_busy']:.0%} busy)")


def _same_scores(runs: list[dict]) -> bool:
    return all(run["scores"] == runs[0]["scores"] for run in runs[1:])


def _max_difference(a: dict, b: dict) -> float:
    return max(abs(a["scores"][slug][0] - b["scores"][slug][0]) for slug in a["scores"])


# --- the measurements ---------------------------------------------------------------------------


# The utility's inner loop without the service (softplus of a block of scores, summed), in a
# fresh interpreter: it waits for a common start time, then prints its seconds.
BURN = """
import sys, time
import numpy as np
scores = np.random.default_rng(0).normal(size=(350, 4000))
scratch = np.empty_like(scores)
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
started = time.perf_counter()
for _ in range(int(sys.argv[2])):
    np.exp(scores, out=scratch)
    np.log1p(scratch, out=scratch)
    scratch.sum(axis=1)
print(time.perf_counter() - started)
"""


def machine_ceiling(iterations: int = 100, rounds: int = 2) -> float:
    """The speed-up two processes of bare numpy get on this machine right now (up to 2.0 on two
    cores): other load on a shared machine caps what two workers can reach. One process and
    two alternate ``rounds`` times; the fastest of each counts (the least disturbed)."""
    seconds: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(rounds):
        for processes in (1, 2):
            start_at = str(time.time() + 1.5)  # after the interpreters have imported numpy
            children = [subprocess.Popen([sys.executable, "-c", BURN, start_at, str(iterations)],
                                         stdout=subprocess.PIPE, text=True) for _ in range(processes)]
            seconds[processes].append(max(float(child.communicate(timeout=600)[0]) for child in children))
    return 2 * min(seconds[1]) / min(seconds[2])


def measure_speedup(actor, large, workers: Workers, repeat: int) -> dict:
    """One worker, then two, ``repeat`` times (alternating cancels most of the machine's drift);
    the second worker is started before and stopped after each two-worker run. Before each
    pair, the machine's ceiling for two processes (``machine_ceiling``) is measured."""
    one, two, ceilings = [], [], []
    for rep in range(repeat):
        ceilings.append(machine_ceiling())
        print(f"  rep {rep + 1}: two bare numpy processes reach {ceilings[-1]:.2f}x here now", flush=True)
        one.append(_valued(actor, large, method=LARGE["method"]))
        print(f"  rep {rep + 1}: 1 worker  {_timing(one[-1])} ({one[-1]['chunks']} chunks)", flush=True)
        workers.start("bench-2")
        workers.wait_ready()
        two.append(_valued(actor, large, method=LARGE["method"]))
        workers.stop("bench-2")
        print(f"  rep {rep + 1}: 2 workers {_timing(two[-1])}", flush=True)
    runs = one + two
    one_s, two_s = statistics.median(r["seconds"] for r in one), statistics.median(r["seconds"] for r in two)
    return {
        "valuation": {**LARGE, "chunks": one[0]["chunks"], "evaluations": one[0]["evaluations"]},
        "one_worker_seconds": [r["seconds"] for r in one], "two_workers_seconds": [r["seconds"] for r in two],
        "one_worker_median_s": one_s, "two_workers_median_s": two_s,
        "speedup": one_s / two_s,
        "speedup_per_rep": [a["seconds"] / b["seconds"] for a, b in zip(one, two, strict=True)],
        "machine_ceiling_per_rep": ceilings, "machine_ceiling_median": statistics.median(ceilings),
        "phases_one_worker": [r["phases"] for r in one], "phases_two_workers": [r["phases"] for r in two],
        "machine_busy_one_worker": [r["machine_busy"] for r in one],
        "machine_busy_two_workers": [r["machine_busy"] for r in two],
        "load_average": os.getloadavg(),
        "scores_identical": _same_scores(runs),
        "input_digests": sorted({r["input_digest"] for r in runs}),
        "ledger_entries_per_run": sorted({r["ledger_entries"] for r in runs}),
    }


def measure_overhead(actor, runs: dict, repeat: int) -> list[dict]:
    """Distributed (one worker) vs the engine in-process vs the eager service path, interleaved."""
    rows = []
    for name, method, budget in OVERHEAD_CASES:
        (training_run, arrays), (participants, rounds) = runs[name], SMALL_RUNS[name]
        case = {"method": method, "budget": budget}
        _valued(actor, training_run, **case)  # warm-up: the worker's child loads the payloads once
        _in_process(arrays, **case)
        distributed, engine, eager = [], [], []
        for _ in range(repeat):
            distributed.append(_valued(actor, training_run, **case))
            engine.append(_in_process(arrays, **case))
            eager.append(_eager(actor, training_run, **case))
        d, e, g = (statistics.median(r["seconds"] for r in timed) for timed in (distributed, engine, eager))
        row = {
            "valuation": {"participants": participants, "rounds": rounds, **case, "chunks": distributed[0]["chunks"]},
            "size": name, "target_applies": name in TARGET_RUNS, "fixed_cost_s": d - e,
            "distributed_seconds": [r["seconds"] for r in distributed], "in_process_seconds": [r["seconds"] for r in engine],
            "eager_seconds": [r["seconds"] for r in eager],
            "distributed_median_s": d, "in_process_median_s": e, "eager_median_s": g,
            "distributed_phases_median_s": {phase: statistics.median(r["phases"][phase] for r in distributed)
                                            for phase in ("plan", "chunks", "finish")},
            "ratio": d / e, "ratio_eager": d / g,
            "ratio_per_rep": [a["seconds"] / b["seconds"] for a, b in zip(distributed, engine, strict=True)],
            "evaluations": {"distributed": distributed[0]["evaluations"], "in_process": engine[0]["evaluations"]},
            "scores_identical_distributed_eager": _same_scores(distributed + eager),
            "max_difference_to_in_process": _max_difference(distributed[0], engine[0]),
        }
        rows.append(row)
        print(f"  {method:<10} {participants:>2} x {rounds} distributed {d * 1e3:8.1f} ms  in-process {e * 1e3:8.1f} ms  "
              f"eager {g * 1e3:8.1f} ms  ratio {d / e:5.2f}", flush=True)
    return rows


def measure_large_in_process(arrays) -> dict:
    """The large valuation once in-process: what the workers' share of the work costs bare."""
    return {"seconds": _in_process(arrays, method=LARGE["method"])["seconds"]}


# --- the run ------------------------------------------------------------------------------------


def _versions(maintenance: str, broker_url: str) -> dict:
    import celery
    import kombu
    import redis

    return {**base_versions(maintenance), "celery": celery.__version__, "kombu": kombu.__version__,
            "redis_py": redis.__version__,
            "redis_server": redis.Redis.from_url(broker_url).info("server")["redis_version"]}


def main() -> None:
    exit_cleanly_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repetition, 1,000 validation rows")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (default 3 for the speed-up, 7 for the overhead)")
    parser.add_argument("--rows", type=int, default=None, help="validation rows (default 4,000)")
    parser.add_argument("--chunk-budget", type=int, default=None, help="VALUATION_CHUNK_BUDGET for this run")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--overhead-only", action="store_true", help="skip the speed-up (for quick looks; exits 1)")
    args = parser.parse_args()
    rows = args.rows or (1000 if args.quick else 4000)
    speed_repeat = args.repeat or (1 if args.quick else 3)
    overhead_repeat = args.repeat or (2 if args.quick else 7)
    maintenance, url, broker_url = _urls()
    admin = scratch_database_create(maintenance, DATABASE)
    started = time.perf_counter()
    results = results_header("PYTHONPATH=. .venv/bin/python benchmarks/workers.py",
                             {"speedup_at_least": SPEEDUP_TARGET, "overhead_at_most": OVERHEAD_TARGET})
    workers = None
    with tempfile.TemporaryDirectory(prefix="fairshare-bench-workers-") as tmp:
        try:
            budget = {} if args.chunk_budget is None else {"VALUATION_CHUNK_BUDGET": str(args.chunk_budget)}
            service_environment(database_url=url, media_root=str(Path(tmp) / "media"), broker_url=broker_url, **budget)
            from django.conf import settings
            from django.core.management import call_command

            _flush_broker(broker_url)
            call_command("migrate", verbosity=0)
            results["versions"] = _versions(maintenance, broker_url)
            results["settings"] = {"VALUATION_CHUNK_BUDGET": settings.VALUATION_CHUNK_BUDGET, "validation_rows": rows,
                                   "features": FEATURES, "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
                                   "worker": "celery -A config worker --concurrency=1 --pool=prefork"}
            print(f"scratch database {DATABASE}, broker {broker_url}; uploading rounds ...", flush=True)
            actor, runs = _seed(rows)
            large, large_arrays = runs["large"]
            workers = Workers(Path(tmp))
            workers.start("bench-1")
            workers.wait_ready()
            print("overhead: small runs, one worker against the engine in-process ...", flush=True)
            results["overhead"] = measure_overhead(actor, runs, overhead_repeat)
            results["overhead_fixed_cost_s"] = statistics.median(
                row["fixed_cost_s"] for row in results["overhead"] if not row["target_applies"])
            print(f"speed-up: exact {LARGE['participants']} participants x {LARGE['rounds']} rounds, "
                  f"{rows} rows, one worker against two ...", flush=True)
            if args.overhead_only:
                for row in results["overhead"]:
                    print(json.dumps({k: row[k] for k in ("valuation", "distributed_phases_median_s")}))
                sys.exit(1)
            results["large_in_process"] = measure_large_in_process(large_arrays)
            print(f"  in-process engine {results['large_in_process']['seconds']:.2f} s", flush=True)
            results["speedup"] = measure_speedup(actor, large, workers, speed_repeat)
        finally:
            if workers is not None:
                workers.stop_all()
            try:
                _flush_broker(broker_url)
            except Exception as exc:  # the broker may be what failed
                print(f"could not flush the broker: {exc}")
            scratch_database_drop(admin, DATABASE, keep=args.keep)
    results["seconds"] = time.perf_counter() - started
    results_finish(RESULTS, results, _print(results))


def _print(results: dict) -> list[str]:
    failures = []
    speed = results["speedup"]
    print()
    print(f"Speed-up: {speed['valuation']['method']} {speed['valuation']['participants']} participants x "
          f"{speed['valuation']['rounds']} rounds, {speed['valuation']['chunks']} chunks, "
          f"{speed['valuation']['evaluations']:,} utilities; median of {len(speed['one_worker_seconds'])}")
    print(f"  in-process engine   {results['large_in_process']['seconds']:8.2f} s")
    print(f"  1 worker            {speed['one_worker_median_s']:8.2f} s   "
          f"({', '.join(f'{s:.1f}' for s in speed['one_worker_seconds'])})")
    print(f"  2 workers           {speed['two_workers_median_s']:8.2f} s   "
          f"({', '.join(f'{s:.1f}' for s in speed['two_workers_seconds'])})")
    for label, key in (("1 worker", "phases_one_worker"), ("2 workers", "phases_two_workers")):
        phases = {name: statistics.median(p[name] for p in speed[key]) for name in ("plan", "chunks", "finish")}
        print(f"  {label + ' phases':<19} plan {phases['plan']:.2f} s, chunks {phases['chunks']:.2f} s, "
              f"finish {phases['finish']:.2f} s (medians)")
    print(f"  cores busy          1 worker {statistics.median(speed['machine_busy_one_worker']):.0%}, "
          f"2 workers {statistics.median(speed['machine_busy_two_workers']):.0%} (medians; all processes)")
    print(f"  1 worker / in-process engine {speed['one_worker_median_s'] / results['large_in_process']['seconds']:.2f} x")
    verdict = "ok" if speed["speedup"] >= SPEEDUP_TARGET else "BELOW TARGET"
    print(f"  speed-up            {speed['speedup']:8.2f} x  (target >= {SPEEDUP_TARGET}) {verdict}")
    print(f"  machine ceiling     {speed['machine_ceiling_median']:8.2f} x  (two bare numpy processes, same moments)")
    print(f"  scores identical across all runs: {speed['scores_identical']}; one input digest: "
          f"{len(speed['input_digests']) == 1}; ledger entries per run: {speed['ledger_entries_per_run']}")
    if speed["speedup"] < SPEEDUP_TARGET:
        failures.append(f"speed-up {speed['speedup']:.2f} < {SPEEDUP_TARGET}")
    if not speed["scores_identical"] or speed["ledger_entries_per_run"] != [1]:
        failures.append("scores differ between runs, or a run has other than one ledger entry")
    print()
    print("Overhead: distributed (1 worker) against the engine in-process and the eager service path (medians)")
    print(f"{'valuation':<32} {'chunks':>6} {'distributed':>12} {'in-process':>11} {'eager':>9} {'ratio':>6} {'vs eager':>8}")
    for row in results["overhead"]:
        v = row["valuation"]
        name = f"{v['method']} {v['participants']}x{v['rounds']}" + (f" budget {v['budget']}" if v["budget"] else "")
        if row["target_applies"]:
            verdict = f"(target <= {OVERHEAD_TARGET}) " + ("ok" if row["ratio"] <= OVERHEAD_TARGET else "ABOVE TARGET")
        else:
            verdict = f"(tiny: fixed cost {row['fixed_cost_s'] * 1e3:.0f} ms a run)"
        print(f"{name:<32} {v['chunks']:>6} {row['distributed_median_s'] * 1e3:>9.1f} ms {row['in_process_median_s'] * 1e3:>8.1f} ms"
              f" {row['eager_median_s'] * 1e3:>6.1f} ms {row['ratio']:>6.2f} {row['ratio_eager']:>8.2f}  {verdict}")
        if row["target_applies"] and row["ratio"] > OVERHEAD_TARGET:
            failures.append(f"{name}: overhead {row['ratio']:.2f} > {OVERHEAD_TARGET}")
    fixed = results["overhead_fixed_cost_s"]
    print(f"A run's fixed cost (distributed - in-process, tiny runs, 3 chunks): {fixed * 1e3:.0f} ms; a run meets "
          f"{OVERHEAD_TARGET}x once the engine takes {fixed / (OVERHEAD_TARGET - 1) * 1e3:.0f} ms or more in-process.")
    return failures


if __name__ == "__main__":
    main()
