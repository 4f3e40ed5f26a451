"""Settling a revenue pool for 1,000 participants, next to inserting as many plain rows, and
the time to render one statement's PDF.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/settlement.py \
        [--quick] [--participants N] [--repeat R] [--keep] [--profile]

Needs PostgreSQL (no broker: CELERY_BROKER_URL stays unset and nothing here starts a task).
Uses the server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) but
never its database: it drops and creates the scratch database ``fairshare_bench_settlement``,
migrates it, and drops it at the end (``--keep`` leaves it).

World: a consortium of ``--participants`` participants (default 1,000; participant rows
bulk-inserted, the rest through the services), a training run with a validation set, and
one SUCCEEDED ``ValuationRun`` whose ``ParticipantScore`` rows are written directly. The
scores are synthetic (a seeded numpy generator, recorded in the JSON; heavy-tailed, about
5 % negative): valuing 1,000 participants through the real pipeline would take hours of
utility evaluations and is not what is measured here; settlement reads only the scores,
their standard errors and per-round values, and the run's ``inputs`` (each participant's
example count in every round, for the data-volume blend) and ``details`` (the methods).
The allocation policy (``policy_change``, actor ``system_principal``) has a reserve, a
floor, a cap, a data-volume blend and a minimum payout, so every step of ``split_pool``
does work and some participants carry their amount to the next period.

Per repetition, on a fresh pool reference (one untimed warm-up repetition first, so every
timed pool also releases amounts carried from earlier ones): ``pool_create`` ->
``pool_statements_draft`` (drafter; timed: contributions, allocation, statement rows) ->
two ``pool_approve`` (two other finance users) -> ``pool_issue`` (timed: funding and
reserve entries, one ledger entry per statement, the checkpoint, the statement updates, the
audit event). Each call is its own transaction, committed inside the timing. "Settling the
pool" is drafting + issuing, the whole of what the issue's target compares.

Baseline, same database and connection, one transaction each, median of the same
repetitions: N rows into ``bench_plain (id bigserial, participant text, amount
numeric(19,4), note text)`` with Django's ``bulk_create`` on an unmanaged model (the way a
Django developer inserts N rows; the ratio's denominator), and, for context, the same rows
with one ``cursor.executemany``.

Target (issue #12, item 8): settling the pool <= 20 x the bulk_create insert.

The ledger's share alone (``_ledger_floor``): N statement-shaped entries (two postings, one
participant named) appended in one transaction, one by one with ``entry_append``, as one
batch with ``entries_append`` (what issuing does), and by one call of the database's batch
function with the entries drafted beforehand: the database's own work for N entries, a lower bound for any issuing that gives every
participant an entry of its own (which it must: a participant reads and proves only the
entries that concern it).

PDF: ``incentives.documents.statement_pdf(statement=...)`` timed for 20 issued statements
of the last pool, the first call separately (cold: fonts, templates); median and p90
seconds per statement. Null when that function does not exist yet.

``--profile`` adds a cProfile of one more issuing (top functions by cumulative and own
time, and the database queries it sends, by kind).

Prints a table and the verdict, writes benchmarks/results/settlement.json, and exits 1
when the target is missed.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

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

RESULTS = HERE / "results" / "settlement.json"
DATABASE = "fairshare_bench_settlement"
TARGET = 20.0
SEED = 20260412
ROUNDS = 3
FEATURES = 4
POOL_AMOUNT = Decimal("1000000.00")
CURRENCY = "EUR"
# Reserve 5 %; floor 0.01 % and cap 0.5 % of the distributable amount (at 1,000 participants
# the mean share is 0.1 %: the heavy tail hits the cap, the negative and small ones sit on the
# floor); 20 % by data volume; a floor share (95 EUR) is under the minimum payout, so carried.
POLICY = {"reserve_rate": "0.05", "floor_share": "0.0001", "cap_share": "0.005", "blend_alpha": "0.8",
          "minimum_payout": "100"}
PDF_STATEMENTS = 20


# --- set-up -------------------------------------------------------------------------------------


def _seed_world(participants: int, seed: int) -> dict:
    """The consortium, its finance staff, the policy, and a succeeded valuation run with
    synthetic scores; returns what the repetitions need and a description for the JSON."""
    from django.contrib.auth import get_user_model

    from consortium.access import Principal
    from consortium.audit import system_principal
    from consortium.models import Participant
    from consortium.services import api_key_create, consortium_create, membership_set
    from incentives.services import policy_change
    from valuation.models import ParticipantScore, ValuationRun
    from valuation.services import training_run_create, validation_set_upload

    system = system_principal()
    consortium = consortium_create(actor=system, slug="bench", name="Settlement benchmark")
    Participant.objects.bulk_create(
        Participant(consortium=consortium, slug=f"p-{i:05d}", name=f"Plant {i:05d}") for i in range(participants))
    members = list(consortium.participants.order_by("slug"))
    key, _ = api_key_create(actor=system, consortium=consortium, name="benchmark", scopes=["ingest", "validation"])
    machine = Principal(api_key=key)
    spec = [{"name": "coef", "shape": [FEATURES], "dtype": "float64"},
            {"name": "intercept", "shape": [], "dtype": "float64"}]
    training_run = training_run_create(actor=machine, consortium=consortium, name="settlement", model_family="logistic",
                                       task="binary", metric="neg_log_loss", parameter_spec=spec)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(64, FEATURES))
    validation_set, _ = validation_set_upload(actor=machine, training_run=training_run,
                                              data=npz(X=X, y=(X[:, 0] > 0).astype(np.float64)))

    # Synthetic scores: heavy-tailed (gamma, shape 0.5), about 5 % negative; per round a
    # random split of the value; example counts per round between 50 and 5,000.
    values = rng.gamma(0.5, 0.02, size=participants)
    negative = rng.random(participants) < 0.05
    values[negative] = -rng.gamma(1.0, 0.002, size=int(negative.sum()))
    stderr = np.abs(values) * rng.uniform(0.05, 0.3, size=participants) + 1e-4
    split = rng.dirichlet(np.ones(ROUNDS), size=participants)
    counts = rng.integers(50, 5000, size=(ROUNDS, participants))
    fake = "0" * 64  # payload digests: nothing reads the files of a run that already succeeded
    inputs = [{"round": t, "global_weights": fake,
               "updates": [[p.slug, fake, int(counts[t, i])] for i, p in enumerate(members)]} for t in range(ROUNDS)]
    run = ValuationRun.objects.create(
        consortium=consortium, training_run=training_run, rounds=list(range(ROUNDS)), method="tmc", budget=None,
        seed=seed, metric="neg_log_loss", validation_set=validation_set, chunk_budget=1000, input_digest=fake,
        engine_version="synthetic", status=ValuationRun.Status.SUCCEEDED, progress_done=1, progress_total=1,
        evaluations=0, inputs=inputs,
        details={"rounds": [{"round": t, "method": "tmc", "chunks": 1, "evaluations": 0} for t in range(ROUNDS)]},
    )
    total = float(values.sum())
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(participants, dtype=int)
    ranks[order] = np.arange(1, participants + 1)
    ParticipantScore.objects.bulk_create(
        ParticipantScore(
            valuation_run=run, participant=p, value=float(values[i]), stderr=float(stderr[i]),
            ci_low=float(values[i] - 1.96 * stderr[i]), ci_high=float(values[i] + 1.96 * stderr[i]),
            share=float(values[i] / total) if total > 0 else None, rank=int(ranks[i]),
            per_round={str(t): float(values[i] * split[i, t]) for t in range(ROUNDS)},
        )
        for i, p in enumerate(members)
    )
    staff = {}
    for name in ("drafter", "first", "second"):
        user = get_user_model().objects.create_user(username=f"{name}@bench.test", email=f"{name}@bench.test",
                                                    password=secrets.token_urlsafe(16))
        membership_set(actor=system, user=user, consortium=consortium, role="finance")
        staff[name] = Principal(user=user)
    policy = policy_change(actor=system, consortium=consortium, note="settlement benchmark", **POLICY)
    world = {"consortium": consortium, "run": run, "staff": staff, "policy": policy,
             "slugs": [p.slug for p in members]}
    world["description"] = {
        "participants": participants, "seed": seed, "rounds": ROUNDS, "negative_scores": int(negative.sum()),
        "score_distribution": "gamma(shape 0.5, scale 0.02); ~5 % negative -gamma(1, 0.002)",
        "examples_per_round": "uniform integers in [50, 5000)", "pool_amount": str(POOL_AMOUNT),
        "currency": CURRENCY, "policy": POLICY, "scores": "synthetic (see the module docstring)",
    }
    return world


# --- settlement ---------------------------------------------------------------------------------


def _settle(world: dict, reference: str) -> dict:
    """One pool from creation to issue; seconds of drafting and of issuing, and what they wrote."""
    from incentives.services import pool_approve, pool_create, pool_issue, pool_statements_draft
    from ledger.models import LedgerEntry
    from ledger.services.proofs import ledger_size

    staff = world["staff"]
    pool = pool_create(actor=staff["drafter"], consortium=world["consortium"], reference=reference, period=reference,
                       amount=POOL_AMOUNT, currency=CURRENCY, valuation_runs=[world["run"].pk], policy=world["policy"])
    clock = time.perf_counter()
    pool = pool_statements_draft(actor=staff["drafter"], pool=pool)
    drafting = time.perf_counter() - clock
    pool_approve(actor=staff["first"], pool=pool)
    pool = pool_approve(actor=staff["second"], pool=pool)
    before = ledger_size()
    clock = time.perf_counter()
    pool = pool_issue(actor=staff["first"], pool=pool)
    issuing = time.perf_counter() - clock
    after = ledger_size()
    assert pool.status == "issued", pool.status
    statements = pool.statements.all()
    return {
        "reference": reference, "drafting_s": drafting, "issuing_s": issuing, "settling_s": drafting + issuing,
        "ledger_entries": after - before,
        "ledger_entries_checked": LedgerEntry.objects.filter(seq__gte=before, seq__lt=after).count(),
        "statements": statements.count(),
        "carried_out": sum(1 for s in statements if s.carried_out), "carried_in": sum(1 for s in statements if s.carried_in),
        "reserve": str(pool.reserve_amount), "checkpoint_size": pool.checkpoint_size, "pool": pool,
    }


# --- baseline -----------------------------------------------------------------------------------


def _plain_model():
    """An unmanaged model over the scratch table ``bench_plain`` (created here)."""
    from django.db import connection, models

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_plain (id bigserial PRIMARY KEY, participant text NOT NULL, "
                       "amount numeric(19, 4) NOT NULL, note text NOT NULL)")

    class BenchPlain(models.Model):
        id = models.BigAutoField(primary_key=True)
        participant = models.TextField()
        amount = models.DecimalField(max_digits=19, decimal_places=4)
        note = models.TextField()

        class Meta:
            app_label = "incentives"
            managed = False
            db_table = "bench_plain"

    return BenchPlain


def _plain_rows(n: int) -> list[tuple[str, Decimal, str]]:
    return [(f"p-{i:05d}", Decimal(f"{(i * 7919) % 100000}.{i % 100:02d}"), f"statement {i} of the plain baseline")
            for i in range(n)]


def _baseline(model, n: int) -> dict:
    """N rows in one transaction: bulk_create (model instances built inside the timing), then
    one executemany; the table is emptied before each, outside the timing."""
    from django.db import connection, transaction

    rows = _plain_rows(n)
    timings = {}
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE bench_plain")
    clock = time.perf_counter()
    with transaction.atomic():
        model.objects.bulk_create([model(participant=p, amount=a, note=t) for p, a, t in rows])
    timings["bulk_create_s"] = time.perf_counter() - clock
    assert model.objects.count() == n
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE bench_plain")
    clock = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany("INSERT INTO bench_plain (participant, amount, note) VALUES (%s, %s, %s)", rows)
    timings["executemany_s"] = time.perf_counter() - clock
    assert model.objects.count() == n
    return timings


# --- PDF ----------------------------------------------------------------------------------------


def _pdf(pool, count: int) -> dict | None:
    try:
        from incentives.documents import statement_pdf
    except ImportError:
        print("PDF rendering: incentives.documents.statement_pdf not available yet", flush=True)
        return None
    statements = list(pool.statements.select_related("participant", "pool").order_by("participant__slug")[:count])
    seconds, sizes = [], []
    for statement in statements:
        clock = time.perf_counter()
        try:
            document = statement_pdf(statement=statement)
        except Exception as exc:  # the function is being written alongside; report, don't abort
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"PDF rendering failed: {message}", flush=True)
            return {"error": message}
        seconds.append(time.perf_counter() - clock)
        sizes.append(len(document))
        assert document[:5] == b"%PDF-", document[:16]
    warm = seconds[1:] or seconds
    return {"statements": len(seconds), "cold_s": seconds[0], "median_s": statistics.median(warm),
            "p90_s": _percentile(warm, 0.9), "seconds": seconds, "bytes_median": statistics.median(sizes)}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- profile and experiment ---------------------------------------------------------------------


def _profile_issuing(world: dict, reference: str) -> dict:
    """cProfile of one issuing, with the queries it sent counted by kind."""
    from django.db import connection

    from incentives.services import pool_approve, pool_create, pool_issue, pool_statements_draft

    staff = world["staff"]
    pool = pool_create(actor=staff["drafter"], consortium=world["consortium"], reference=reference, period=reference,
                       amount=POOL_AMOUNT, currency=CURRENCY, valuation_runs=[world["run"].pk], policy=world["policy"])
    drafting = cProfile.Profile()
    drafting.enable()
    pool = pool_statements_draft(actor=staff["drafter"], pool=pool)
    drafting.disable()
    pool_approve(actor=staff["first"], pool=pool)
    pool = pool_approve(actor=staff["second"], pool=pool)
    queries: Counter = Counter()
    query_seconds: Counter = Counter()

    def count(execute, sql, params, many, context):
        clock = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = _query_kind(sql)
            queries[kind] += 1
            query_seconds[kind] += time.perf_counter() - clock

    profiler = cProfile.Profile()
    with connection.execute_wrapper(count):
        clock = time.perf_counter()
        profiler.enable()
        pool_issue(actor=staff["first"], pool=pool)
        profiler.disable()
        total = time.perf_counter() - clock
    by_cumulative, by_own = _top(profiler)
    drafting_cumulative, drafting_own = _top(drafting)
    return {"issuing_s_profiled": total, "by_cumulative": by_cumulative, "by_own": by_own,
            "queries": dict(queries.most_common()),
            "query_seconds": {kind: query_seconds[kind] for kind, _ in queries.most_common()},
            "drafting_by_cumulative": drafting_cumulative, "drafting_by_own": drafting_own}


def _top(profiler: cProfile.Profile) -> tuple[list[dict], list[dict]]:
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in pstats.Stats(profiler).stats.items():
        where = f"{Path(filename).relative_to(ROOT) if filename.startswith(str(ROOT)) else Path(filename).name}:{line}"
        rows.append({"function": f"{where}({name})", "calls": calls, "own_s": own, "cumulative_s": cumulative})
    return sorted(rows, key=lambda row: -row["cumulative_s"])[:25], sorted(rows, key=lambda row: -row["own_s"])[:15]


def _query_kind(sql: str) -> str:
    text = " ".join(sql.split())
    if "fairshare_ledger_append" in text:
        return "ledger append (function call)"
    if "pg_current_xact_id" in text:
        return "WAL flush after commit"
    for marker, kind in (("incentives_revenuepool_valuation_runs", "pool valuation runs (per statement)"),
                         ("UPDATE \"incentives_statement\"", "statement bulk_update"),
                         ("ledger_node", "checkpoint: tree nodes"), ("ledger_checkpoint", "checkpoint"),
                         ("ledger_head", "ledger head"), ("consortium_auditevent", "audit event"),
                         ("FOR UPDATE", "pool lock")):
        if marker in text:
            return kind
    return text.split(" ")[0].upper() + " (other)"


def _ledger_floor(world: dict, n: int) -> dict:
    """What the ledger alone costs for ``n`` entries shaped like statements (two postings,
    one participant named, a small body), in one transaction: appended one by one with
    ``entry_append``, and, as the lower bound of the database's own work, by one call of the
    batch wrapper (drafted beforehand, outside the timing). Every entry is a leaf of the
    hash chain and of the Merkle tree, with its postings and participant link: several rows
    and two SHA-256 hashes in the database, where the baseline writes one narrow row."""
    from django.db import connection, transaction

    from consortium.audit import system_principal
    from ledger.services import append, entries_append, entry_append
    from ledger.services.draft import entry_draft

    consortium, slugs = world["consortium"], world["slugs"][:n]
    actor = system_principal()

    def shape(tag: str, i: int, slug: str) -> dict:
        return {"consortium": consortium, "kind": "transaction", "actor": actor, "reference_type": "statement",
                "reference_id": f"floor-{tag}-{i}", "participants": [slug], "idempotency_key": f"floor:{tag}:{i}",
                "body": {"type": "statement", "participant": slug, "amount": "1.00"},
                "postings": [("revenue_pool:floor", Decimal("-1.00"), CURRENCY),
                             (f"participant_payable:{slug}", Decimal("1.00"), CURRENCY)]}

    tag = f"{time.time_ns()}"
    clock = time.perf_counter()
    with transaction.atomic():
        for i, slug in enumerate(slugs):
            entry_append(**shape(f"{tag}-one", i, slug))
    one_by_one = time.perf_counter() - clock
    clock = time.perf_counter()
    entries_append([shape(f"{tag}-batch", i, slug) for i, slug in enumerate(slugs)])
    batch = time.perf_counter() - clock
    drafts = [entry_draft(**shape(f"{tag}-call", i, slug)) for i, slug in enumerate(slugs)]
    payload = json.dumps([append._named_params(draft) for draft in drafts])
    clock = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM fairshare_ledger_append_many(%s::jsonb)", [payload])
        assert cursor.fetchone()[0] == len(drafts)
    database = time.perf_counter() - clock
    return {"entries": len(slugs), "entry_append_s": one_by_one, "entries_append_s": batch, "one_call_s": database}


def _count_flushes(world: dict, reference: str) -> int:
    """How many WAL flushes one more issuing sends (under whatever is patched now)."""
    from django.db import connection

    from incentives.services import pool_approve, pool_create, pool_issue, pool_statements_draft

    staff = world["staff"]
    pool = pool_create(actor=staff["drafter"], consortium=world["consortium"], reference=reference, period=reference,
                       amount=POOL_AMOUNT, currency=CURRENCY, valuation_runs=[world["run"].pk], policy=world["policy"])
    pool = pool_statements_draft(actor=staff["drafter"], pool=pool)
    pool_approve(actor=staff["first"], pool=pool)
    pool = pool_approve(actor=staff["second"], pool=pool)
    flushes = []

    def count(execute, sql, params, many, context):
        if "pg_current_xact_id" in sql:
            flushes.append(1)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        pool_issue(actor=staff["first"], pool=pool)
    return len(flushes)


# --- the run ------------------------------------------------------------------------------------


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main() -> None:
    exit_cleanly_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 participants, 2 repetitions (development)")
    parser.add_argument("--participants", type=int, default=None, help="participants (default 1,000)")
    parser.add_argument("--repeat", type=int, default=None, help="timed repetitions (default 5)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the synthetic scores")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--profile", action="store_true", help="cProfile one more issuing")
    args = parser.parse_args()
    n = args.participants or (200 if args.quick else 1000)
    repeat = args.repeat or (2 if args.quick else 5)
    maintenance, url = postgres_urls(DATABASE, "benchmarks/settlement.py")
    admin = scratch_database_create(maintenance, DATABASE)
    started = time.perf_counter()
    results: dict = {
        **results_header("OPENBLAS_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/settlement.py",
                         {"settling_over_bulk_create_at_most": TARGET}),
        "participants": n, "repeat": repeat,
    }
    with tempfile.TemporaryDirectory(prefix="fairshare-bench-settlement-") as tmp:
        try:
            service_environment(database_url=url, media_root=str(Path(tmp) / "media"))
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            results["versions"] = base_versions(maintenance)
            print(f"scratch database {DATABASE}; seeding {n:,} participants ...", flush=True)
            world = _seed_world(n, args.seed)
            results["world"] = world["description"]
            plain = _plain_model()
            _baseline(plain, n)  # warm-up
            warm = _settle(world, "warm-up")
            print(f"  warm-up pool: drafting {warm['drafting_s']:.3f} s, issuing {warm['issuing_s']:.3f} s "
                  f"({warm['ledger_entries']} entries)", flush=True)
            settled, baseline = [], []
            for rep in range(repeat):
                settled.append(_settle(world, f"pool-{rep + 1}"))
                baseline.append(_baseline(plain, n))
                s, b = settled[-1], baseline[-1]
                print(f"  rep {rep + 1}: drafting {s['drafting_s']:.3f} s, issuing {s['issuing_s']:.3f} s, "
                      f"bulk_create {b['bulk_create_s'] * 1e3:.1f} ms, executemany {b['executemany_s'] * 1e3:.1f} ms, "
                      f"ratio {s['settling_s'] / b['bulk_create_s']:.1f}x", flush=True)
            last_pool = settled[-1]["pool"]
            results["warm_up"] = {k: v for k, v in warm.items() if k != "pool"}
            results["repetitions"] = [{**{k: v for k, v in s.items() if k != "pool"}, **b}
                                      for s, b in zip(settled, baseline, strict=True)]
            medians = {key: _median(settled, key) for key in ("drafting_s", "issuing_s", "settling_s")}
            medians.update({key: _median(baseline, key) for key in ("bulk_create_s", "executemany_s")})
            results["medians"] = medians
            results["ratio"] = medians["settling_s"] / medians["bulk_create_s"]
            results["ratio_per_rep"] = [s["settling_s"] / b["bulk_create_s"] for s, b in zip(settled, baseline, strict=True)]
            results["ratio_issuing_only"] = medians["issuing_s"] / medians["bulk_create_s"]
            results["ratio_executemany"] = medians["settling_s"] / medians["executemany_s"]
            results["ledger_entries_per_pool"] = sorted({s["ledger_entries"] for s in settled})
            results["statements_per_pool"] = sorted({s["statements"] for s in settled})
            results["carried_out_per_pool"] = [s["carried_out"] for s in settled]
            results["carried_in_per_pool"] = [s["carried_in"] for s in settled]
            results["per_statement_ms"] = {"drafting": medians["drafting_s"] / n * 1e3,
                                           "issuing": medians["issuing_s"] / n * 1e3,
                                           "bulk_create_row": medians["bulk_create_s"] / n * 1e3}
            results["pdf"] = _pdf(last_pool, PDF_STATEMENTS)
            results["wal_flushes_per_issue"] = _count_flushes(world, "flushes-counted")
            floors = [_ledger_floor(world, n) for _ in range(repeat)]
            results["ledger_floor"] = {
                "entries": n, "runs": floors,
                "entry_append_median_s": statistics.median(f["entry_append_s"] for f in floors),
                "entries_append_median_s": statistics.median(f["entries_append_s"] for f in floors),
                "one_call_median_s": statistics.median(f["one_call_s"] for f in floors),
            }
            results["ledger_floor"]["one_call_over_bulk_create"] = (
                results["ledger_floor"]["one_call_median_s"] / medians["bulk_create_s"])
            results["ledger_floor"]["entry_append_over_bulk_create"] = (
                results["ledger_floor"]["entry_append_median_s"] / medians["bulk_create_s"])
            if args.profile:
                print("profiling one more issuing ...", flush=True)
                results["profile"] = _profile_issuing(world, "profiled")
        finally:
            scratch_database_drop(admin, DATABASE, keep=args.keep)
    results["seconds"] = time.perf_counter() - started
    results_finish(RESULTS, results, _print(results))


def _print(results: dict) -> list[str]:
    m, n = results["medians"], results["participants"]
    print()
    print(f"Settling a pool of {n:,} participants (median of {results['repeat']}; one transaction per step)")
    print(f"  drafting (contributions, allocation, statements)  {m['drafting_s'] * 1e3:9.1f} ms "
          f"({results['per_statement_ms']['drafting']:.3f} ms a statement)")
    print(f"  issuing (entries, checkpoint, statement updates)  {m['issuing_s'] * 1e3:9.1f} ms "
          f"({results['per_statement_ms']['issuing']:.3f} ms a statement; "
          f"{', '.join(map(str, results['ledger_entries_per_pool']))} ledger entries a pool)")
    print(f"  settling = drafting + issuing                      {m['settling_s'] * 1e3:9.1f} ms")
    print(f"  {n:,} plain rows, bulk_create, one transaction     {m['bulk_create_s'] * 1e3:9.1f} ms")
    print(f"  {n:,} plain rows, executemany, one transaction     {m['executemany_s'] * 1e3:9.1f} ms (context)")
    print(f"  issuing alone / bulk_create {results['ratio_issuing_only']:.1f}x; settling / executemany "
          f"{results['ratio_executemany']:.1f}x")
    ok = results["ratio"] <= TARGET
    print(f"  settling / bulk_create {results['ratio']:8.1f} x  (target <= {TARGET:.0f}x) "
          f"{'ok' if ok else 'ABOVE TARGET'}   per rep: {', '.join(f'{r:.1f}' for r in results['ratio_per_rep'])}")
    floor = results["ledger_floor"]
    print(f"The ledger alone, {floor['entries']:,} statement-shaped entries in one transaction: entry_append one by one "
          f"{floor['entry_append_median_s'] * 1e3:.0f} ms ({floor['entry_append_over_bulk_create']:.1f}x bulk_create); "
          f"entries_append {floor['entries_append_median_s'] * 1e3:.0f} ms; the database's own work, one call for all "
          f"{floor['one_call_median_s'] * 1e3:.0f} ms ({floor['one_call_over_bulk_create']:.1f}x)")
    pdf = results.get("pdf")
    if pdf is None:
        print("PDF rendering: not measured (incentives.documents.statement_pdf not available)")
    elif "error" in pdf:
        print(f"PDF rendering: not measured, statement_pdf failed ({pdf['error']})")
    else:
        print(f"PDF rendering, {pdf['statements']} statements: cold {pdf['cold_s'] * 1e3:.0f} ms, then median "
              f"{pdf['median_s'] * 1e3:.0f} ms, p90 {pdf['p90_s'] * 1e3:.0f} ms a statement "
              f"({pdf['bytes_median'] / 1024:.0f} KiB)")
    if "profile" in results:
        profile = results["profile"]
        print(f"\nProfile of one issuing ({profile['issuing_s_profiled']:.3f} s under cProfile); queries by kind:")
        for kind, count in profile["queries"].items():
            print(f"  {count:6d} x {kind:<40} {profile['query_seconds'][kind] * 1e3:8.1f} ms")
        print("  top by cumulative time:")
        for row in profile["by_cumulative"][:18]:
            print(f"    {row['cumulative_s'] * 1e3:8.1f} ms {row['calls']:7d} calls  {row['function']}")
        print("  drafting, top by cumulative time (under cProfile):")
        for row in profile["drafting_by_cumulative"][:14]:
            print(f"    {row['cumulative_s'] * 1e3:8.1f} ms {row['calls']:7d} calls  {row['function']}")
    return [] if ok else [f"settling / bulk_create {results['ratio']:.1f} > {TARGET:.0f}"]


if __name__ == "__main__":
    main()
