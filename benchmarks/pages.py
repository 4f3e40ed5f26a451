"""The main pages with real volumes, next to a trivial page in the same run.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/pages.py [--repeat R] [--keep]

Needs PostgreSQL. Uses the server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
but never its database: it drops and creates the scratch database ``fairshare_bench_pages``,
migrates it, and drops it at the end (``--keep`` leaves it).

World (issue #13, item 4): a consortium of 200 participants, a training run of 50 rounds
(global weights and 200 updates each: 10,000 update rows sharing one stored payload, written
directly: pages read only the rows), one SUCCEEDED valuation run over the 50 rounds whose
scores are synthetic (a seeded generator, as in settlement.py: valuing 200 participants
for real takes hours and is not what is measured), an issued revenue pool with its 200
statements (through the services), three disputes (one under review with a finished
re-valuation: a second synthetic run attached to it directly, as the dispute's re-valuation
service would after hours of work), and a ledger grown to 100,000 entries
(``ledger_build.ledger_extend``: computed rows loaded with COPY, exactly what the append
writes), every extra entry concerning one participant (the worst case for its own view),
with a signed checkpoint over all of them.

Pages that keep final figures in the cache (a dispute's finished re-valuation, a run's
per-round totals) are also timed as the first view after the figures became final ("first
view"): before each request the cache is cleared and the valuation's success announced again
(``valuation_run_succeeded``, untimed, as the finishing step sends it), so only what that
announcement prepares is kept.

Each page is requested through Django's test client (the whole middleware stack, session
sign-in, template rendering; no network), once to warm up and then ``--repeat`` times
(default 15), interleaved page by page with the trivial page: the dashboard listing the
user's consortia (one table of one row, the same layout, session and middleware). For each
page: the median time, its ratio to the trivial page's median, and the number of queries.

Target: the slowest main page within 5x the trivial page. Prints a table and the verdict,
writes benchmarks/results/pages.json, and exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import numpy as np  # noqa: E402
import psycopg2  # noqa: E402
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

RESULTS = HERE / "results" / "pages.json"
DATABASE = "fairshare_bench_pages"
TARGET = 5.0
SEED = 20261201
PARTICIPANTS = 200
ROUNDS = 50
LEDGER_ENTRIES = 100_000
FEATURES = 4
# Pages that keep final figures in the cache (a finished re-valuation's comparison and implied
# amount, a run's per-round totals) are timed a second time as the first view after the
# figures became final: the cache cleared, then what the finishing step prepares.
COLD = "first view: "


# --- the world ----------------------------------------------------------------------------------


def _users(consortium, system) -> dict:
    from django.contrib.auth import get_user_model

    from consortium.access import Principal
    from consortium.services import membership_set

    users = {}
    for role in ("finance", "finance2", "finance3", "governance", "auditor"):
        user = get_user_model().objects.create_user(username=f"{role}@bench.test", password="unused-here")
        membership_set(actor=system, user=user, consortium=consortium, role=role.rstrip("23"))
        users[role] = user
    for participant in consortium.participants.order_by("slug")[:3]:
        user = get_user_model().objects.create_user(username=f"{participant.slug}@bench.test", password="unused-here")
        membership_set(actor=system, user=user, consortium=consortium, role="participant", participant=participant)
        users.setdefault("participant", user)
        users.setdefault("participants", []).append((user, participant))
    return {"principals": {name: Principal(user=user) for name, user in users.items() if name != "participants"},
            **users}


def _training_run(consortium, system, rng):
    """50 rounds of 200 updates, as rows sharing one payload (pages read rows, not files)."""
    from consortium.access import Principal
    from consortium.services import api_key_create
    from valuation.models import GlobalWeights, ParticipantUpdate, Payload
    from valuation.services import global_weights_upload, training_run_create, validation_set_upload

    key, _ = api_key_create(actor=system, consortium=consortium, name="coordinator", scopes=["ingest", "validation"])
    machine = Principal(api_key=key)
    spec = [{"name": "coef", "shape": [FEATURES], "dtype": "float64"},
            {"name": "intercept", "shape": [], "dtype": "float64"}]
    run = training_run_create(actor=machine, consortium=consortium, name="press-line-failures", model_family="logistic",
                              task="binary", metric="neg_log_loss", parameter_spec=spec)
    X = rng.normal(size=(64, FEATURES))
    validation_set, _ = validation_set_upload(actor=machine, training_run=run,
                                              data=npz(X=X, y=(X[:, 0] > 0).astype(np.float64)))
    weights, _ = global_weights_upload(actor=machine, training_run=run, round=0,
                                       data=npz(coef=np.zeros(FEATURES), intercept=np.float64(0)))
    payload = Payload.objects.get(pk=weights.payload_id)
    GlobalWeights.objects.bulk_create(GlobalWeights(training_run=run, round=t, payload=payload)
                                      for t in range(1, ROUNDS))
    members = list(consortium.participants.order_by("slug"))
    counts = rng.integers(50, 5000, size=(ROUNDS, len(members)))
    ParticipantUpdate.objects.bulk_create(
        ParticipantUpdate(training_run=run, round=t, participant=p, payload=payload, num_examples=int(counts[t, i]))
        for t in range(ROUNDS) for i, p in enumerate(members))
    return run, validation_set, counts


def _valuation(consortium, run, validation_set, counts, rng):
    """A succeeded valuation over the 50 rounds with synthetic scores (see the docstring)."""
    from valuation.models import ParticipantScore, ValuationRun

    members = list(consortium.participants.order_by("slug"))
    values = rng.gamma(0.5, 0.02, size=len(members))
    stderr = np.abs(values) * rng.uniform(0.05, 0.3, size=len(members)) + 1e-4
    split = rng.dirichlet(np.ones(ROUNDS), size=len(members))
    fake = "0" * 64
    inputs = [{"round": t, "global_weights": fake,
               "updates": [[p.slug, fake, int(counts[t, i])] for i, p in enumerate(members)]} for t in range(ROUNDS)]
    valuation = ValuationRun.objects.create(
        consortium=consortium, training_run=run, rounds=list(range(ROUNDS)), method="tmc", budget=None, seed=SEED,
        metric="neg_log_loss", validation_set=validation_set, chunk_budget=1000, input_digest=fake,
        engine_version="synthetic", status=ValuationRun.Status.SUCCEEDED, progress_done=1, progress_total=1,
        evaluations=0, inputs=inputs,
        details={"rounds": [{"round": t, "method": "tmc", "chunks": 1, "evaluations": 0} for t in range(ROUNDS)]},
    )
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(members), dtype=int)
    ranks[order] = np.arange(1, len(members) + 1)
    ParticipantScore.objects.bulk_create(
        ParticipantScore(valuation_run=valuation, participant=p, value=float(values[i]), stderr=float(stderr[i]),
                         ci_low=float(values[i] - 1.96 * stderr[i]), ci_high=float(values[i] + 1.96 * stderr[i]),
                         share=float(values[i] / values.sum()), rank=int(ranks[i]),
                         per_round={str(t): float(values[i] * split[i, t]) for t in range(ROUNDS)})
        for i, p in enumerate(members))
    return valuation


def _settlement(consortium, valuation, users):
    """An issued pool with 200 statements, through the services, and three disputes."""
    from incentives.services import dispute_file, pool_approve, pool_create, pool_issue, pool_statements_draft

    p = users["principals"]
    pool = pool_create(actor=p["finance"], consortium=consortium, reference="2026-q1", period="2026-Q1",
                       amount=Decimal("250000.00"), currency="EUR", valuation_runs=[valuation.pk])
    pool = pool_statements_draft(actor=p["finance"], pool=pool)
    pool_approve(actor=p["finance2"], pool=pool)
    pool = pool_approve(actor=p["finance3"], pool=pool)
    pool = pool_issue(actor=p["finance2"], pool=pool)
    from consortium.access import Principal

    disputes = []
    for user, participant in users["participants"]:
        statement = pool.statements.get(participant=participant)
        disputes.append(dispute_file(actor=Principal(user=user), statement=statement, line="amount",
                                     reason="Our March uploads are missing."))
    return pool, disputes


def _revalued(dispute, revaluation, users) -> None:
    """The dispute under review with ``revaluation`` (another synthetic run) finished."""
    from incentives.models import Dispute
    from incentives.services import dispute_review

    dispute_review(actor=users["principals"]["governance"], dispute=dispute)
    Dispute.objects.filter(pk=dispute.pk).update(revalued_run=dispute.statement.pool.valuation_runs.get(),
                                                 revaluation=revaluation)
    _announce(revaluation)


def _announce(run) -> None:
    """What the valuation's finishing step does once a run's scores are committed."""
    from valuation.models import ValuationRun
    from valuation.signals import valuation_run_succeeded

    valuation_run_succeeded.send(sender=ValuationRun, run=run)


def _ledger(consortium, participant, url: str) -> None:
    from ledger_build import ledger_extend

    from ledger.services import checkpoint_create

    connection = psycopg2.connect(url)
    try:
        ledger_extend(connection, target=LEDGER_ENTRIES, consortium_id=consortium.pk,
                      participant=(participant.pk, participant.slug), transactions=True)
    finally:
        connection.close()
    checkpoint_create()


def _seed(url: str) -> dict:
    from consortium.audit import system_principal
    from consortium.models import Participant
    from consortium.services import consortium_create

    rng = np.random.default_rng(SEED)
    system = system_principal()
    consortium = consortium_create(actor=system, slug="bench", name="Page benchmark consortium")
    Participant.objects.bulk_create(Participant(consortium=consortium, slug=f"plant-{i:03d}", name=f"Plant {i:03d}")
                                    for i in range(PARTICIPANTS))
    users = _users(consortium, system)
    run, validation_set, counts = _training_run(consortium, system, rng)
    valuation = _valuation(consortium, run, validation_set, counts, rng)
    pool, disputes = _settlement(consortium, valuation, users)
    revaluation = _valuation(consortium, run, validation_set, counts, rng)
    _revalued(disputes[0], revaluation, users)
    watched = users["participants"][0][1]
    _ledger(consortium, watched, url)
    return {"consortium": consortium, "run": run, "valuation": valuation, "pool": pool, "disputes": disputes,
            "users": users, "participant": watched, "revaluation": revaluation}


# --- the pages ----------------------------------------------------------------------------------


def _pages(world) -> list[tuple[str, str, str]]:
    """(name, user, url) of every main page, staff and participant."""
    from django.urls import reverse

    from ledger.models import LedgerEntry

    slug = world["consortium"].slug
    statement = world["pool"].statements.get(participant=world["participant"])
    entry = LedgerEntry.objects.filter(consortium=world["consortium"]).order_by("-seq").first()

    def url(name, **kwargs):
        return reverse(name, kwargs={"slug": slug, **kwargs})

    return [
        ("overview (finance)", "finance", url("consortium-page")),
        ("overview (participant)", "participant", url("consortium-page")),
        ("training runs", "finance", url("training-runs-page")),
        ("training run (50 rounds x 200)", "finance", url("training-run-page", run_id=world["run"].pk)),
        ("valuation runs", "finance", url("valuation-runs-page")),
        ("valuation run (200 x 50)", "finance", url("valuation-run-page", valuation_run_id=world["valuation"].pk)),
        ("my contribution", "participant", url("contributions-page")),
        ("contributions (finance)", "finance", url("contributions-page")),
        ("revenue pools", "finance", url("pools-page")),
        ("pool (200 statements)", "finance", url("pool-page", pool_id=world["pool"].pk)),
        ("statements", "finance", url("statements-page")),
        ("statements (participant)", "participant", url("statements-page")),
        ("statement", "participant", url("statement-page", statement_id=statement.pk)),
        ("disputes (governance)", "governance", url("disputes-page")),
        ("dispute, re-valued", "governance", url("dispute-page", dispute_id=world["disputes"][0].pk)),
        (COLD + "dispute, re-valued", "governance", url("dispute-page", dispute_id=world["disputes"][0].pk)),
        (COLD + "valuation run (200 x 50)", "finance",
         url("valuation-run-page", valuation_run_id=world["valuation"].pk)),
        ("dispute, re-valued (participant)", "participant", url("dispute-page", dispute_id=world["disputes"][0].pk)),
        ("dispute, open", "governance", url("dispute-page", dispute_id=world["disputes"][1].pk)),
        ("ledger (100,000 entries)", "auditor", url("ledger-page")),
        ("ledger, filtered", "auditor", url("ledger-page") + "?kind=transaction&reference_type=statement"),
        ("ledger, last page", "auditor", url("ledger-page") + "?page=last"),
        ("ledger (participant)", "participant", url("ledger-page")),
        ("ledger entry", "auditor", url("ledger-entry-page", seq=entry.seq)),
        ("checkpoints", "participant", url("checkpoints-page")),
        ("audit log", "auditor", url("audit-page")),
    ]


def _time(client, url: str, *, cold=()) -> tuple[float, int]:
    """Seconds and queries of one request; with ``cold`` (valuation runs), the first view
    after the figures became final: the cache emptied, then only what the runs' finishing
    steps prepare (their announcements) in it, untimed."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if cold:
        cache.clear()
        for run in cold:
            _announce(run)
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    return elapsed, len(queries)


def _measure(world, repeat: int) -> dict:
    from django.test import Client

    clients = {}
    for name in ("finance", "governance", "auditor", "participant"):
        clients[name] = Client()
        clients[name].force_login(world["users"][name])
    trivial_url = "/"
    rows = []
    trivial_times = []
    for name, user, url in _pages(world):
        client = clients[user]
        _time(client, url), _time(clients["finance"], trivial_url)  # warm-up
        times, baseline = [], []
        for _ in range(repeat):
            announced = (world["valuation"], world["revaluation"]) if name.startswith(COLD) else ()
            elapsed, queries = _time(client, url, cold=announced)
            times.append(elapsed)
            baseline.append(_time(clients["finance"], trivial_url)[0])
        trivial_times.extend(baseline)
        rows.append({"page": name, "user": user, "url": url, "median_s": statistics.median(times),
                     "trivial_median_s": statistics.median(baseline), "queries": queries})
        print(f"  {name:34} {rows[-1]['median_s'] * 1e3:8.1f} ms  {queries:3d} queries", flush=True)
    trivial = statistics.median(trivial_times)
    for row in rows:
        # Against the trivial page measured beside it (interleaved), so drift cancels out.
        row["ratio"] = row["median_s"] / row["trivial_median_s"]
    return {"trivial": {"page": "dashboard (/)", "median_s": trivial,
                        "queries": _time(clients["finance"], trivial_url)[1]},
            "pages": rows}


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    exit_cleanly_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per page (default 15)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    maintenance, url = postgres_urls(DATABASE, "benchmarks/pages.py")
    admin = scratch_database_create(maintenance, DATABASE)
    started = time.perf_counter()
    results: dict = {
        **results_header("OPENBLAS_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/pages.py",
                         {"slowest_page_over_trivial_at_most": TARGET}),
        "world": {"participants": PARTICIPANTS, "rounds": ROUNDS, "ledger_entries": LEDGER_ENTRIES, "seed": SEED,
                  "scores": "synthetic (see the module docstring)"},
        "repeat": args.repeat,
    }
    with tempfile.TemporaryDirectory(prefix="fairshare-bench-pages-") as tmp:
        try:
            service_environment(database_url=url, media_root=str(Path(tmp) / "media"), ALLOWED_HOSTS="testserver")
            from django.core.management import call_command
            from django.db import connections

            call_command("migrate", verbosity=0)
            results["versions"] = base_versions(maintenance)
            print(f"scratch database {DATABASE}; seeding {PARTICIPANTS} participants, {ROUNDS} rounds, "
                  f"{LEDGER_ENTRIES:,} ledger entries ...", flush=True)
            seeding = time.perf_counter()
            world = _seed(url)
            results["seeding_s"] = time.perf_counter() - seeding
            with connections["default"].cursor() as cursor:
                cursor.execute("ANALYZE")
            print(f"seeded in {results['seeding_s']:.0f} s; timing (median of {args.repeat}):", flush=True)
            results.update(_measure(world, args.repeat))
        finally:
            scratch_database_drop(admin, DATABASE, keep=args.keep)
    results["seconds"] = time.perf_counter() - started
    results_finish(RESULTS, results, _print(results))


def _print(results: dict) -> list[str]:
    trivial = results["trivial"]
    print()
    print(f"Pages with {PARTICIPANTS} participants, {ROUNDS} rounds, {LEDGER_ENTRIES:,} ledger entries "
          f"(median of {results['repeat']}; trivial page {trivial['median_s'] * 1e3:.1f} ms, "
          f"{trivial['queries']} queries)")
    print(f"  {'page':34} {'median':>9} {'x trivial':>10} {'queries':>8}")
    for row in sorted(results["pages"], key=lambda row: -row["ratio"]):
        print(f"  {row['page']:34} {row['median_s'] * 1e3:7.1f} ms {row['ratio']:9.2f}x {row['queries']:8d}")
    slowest = max(results["pages"], key=lambda row: row["ratio"])
    results["slowest"] = {"page": slowest["page"], "ratio": slowest["ratio"]}
    verdict = "met" if slowest["ratio"] <= TARGET else "MISSED"
    print(f"\nslowest main page: {slowest['page']}, {slowest['ratio']:.2f}x the trivial page "
          f"(target <= {TARGET:.0f}x): {verdict}")
    return [] if slowest["ratio"] <= TARGET else [f"{slowest['page']} is {slowest['ratio']:.2f}x the trivial page"]


if __name__ == "__main__":
    main()
