"""Valuation runs on real Celery workers, with Redis as the broker and PostgreSQL as the
database (issue #11, item 6).

Most tests start the worker as the deployment does, a prefork ``celery worker`` in a
process of its own (tests/valuation/runs/worker_process.py) on the pytest database and
this test's media folder; one uses Celery's in-thread test worker. Every test has a
private queue, so messages left on the shared Redis by an earlier test or session are
never consumed here. The reference scores come from the embedded path (tasks run
in-process, as without a broker) for the same request and seed, and must match bit for
bit.

Run with ``REQUIRE_SERVICES=1 DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://...``
(without the services these tests are skipped).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import redis
from celery import states
from celery.contrib.testing.worker import start_worker
from celery.result import AsyncResult
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import Count

from config.celery import app as celery_app
from consortium.access import Principal
from ledger.models import LedgerEntry
from tests.conftest import TEST_LEDGER_SIGNING_KEY
from tests.factories import ApiKeyFactory, ConsortiumFactory, ParticipantFactory
from tests.valuation.conftest import LOGISTIC_SPEC
from tests.valuation.runs.conftest import upload_rounds
from valuation.models import CoalitionUtility, ParticipantScore, ParticipantUpdate, UtilityBlock, ValuationRun
from valuation.services import training_run_create
from valuation.services.valuation_runs import valuation_run_start

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

RUNNING, SUCCEEDED, FAILED, CANCELLED = (ValuationRun.Status.RUNNING, ValuationRun.Status.SUCCEEDED,
                                         ValuationRun.Status.FAILED, ValuationRun.Status.CANCELLED)
# Generous bounds for a loaded 2-core machine; a passing run takes a fraction of them.
RUN_TIMEOUT = 90
POLL_SECONDS = 0.02


# -- the broker: one private queue per test -------------------------------------------------


class Broker:
    """The test's queue on the Redis broker, and what kombu keeps there about it."""

    def __init__(self, url: str, queue: str) -> None:
        self.url, self.queue = url, queue
        self.redis = redis.Redis.from_url(url)

    def purge(self) -> None:
        """Drop the queued messages (the upload fixtures enqueue payload verifications)."""
        for key in self.redis.scan_iter(match=f"{self.queue}*"):
            self.redis.delete(key)

    def unacked(self) -> int:
        """Messages of this queue delivered to a worker and not acknowledged yet."""
        return sum(1 for raw in self.redis.hvals("unacked") if json.loads(raw)[2] == self.queue)

    def forget_chunk_results(self) -> None:
        """Remove stored chunk results: chunk task ids repeat in every session's new
        database, and their results outlive the session."""
        for key in self.redis.scan_iter(match="celery-task-meta-valuation-chunk-*"):
            self.redis.delete(key)

    def cleanup(self) -> None:
        """Forget the queue, and what a killed worker left unacknowledged on it (which
        another worker's sweep would otherwise put back)."""
        for tag, raw in self.redis.hgetall("unacked").items():
            if json.loads(raw)[2] == self.queue:
                self.redis.hdel("unacked", tag)
                self.redis.zrem("unacked_index", tag)
        for key in self.redis.scan_iter(match=f"*{self.queue}*"):
            self.redis.delete(key)


@pytest.fixture(autouse=True)
def broker():
    """A private queue for everything this test enqueues, set before any fixture uploads."""
    queue = f"test-valuation-{uuid.uuid4().hex}"
    saved = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    found = Broker(os.environ.get("CELERY_BROKER_URL", ""), queue)
    yield found
    celery_app.conf.task_default_queue = saved
    found.cleanup()


# -- workers ------------------------------------------------------------------------------


def _database_url() -> str:
    """The pytest database (test_<name>), as the worker's DATABASE_URL."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    """``celery worker --pool=prefork`` in its own process group, logging to a file."""

    def __init__(self, broker: Broker, log_path: Path, *, concurrency: int = 1, env: dict | None = None) -> None:
        self.log_path = log_path
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": broker.url,
            # Production mode: no development defaults.
            "DEBUG": "0",
            "SECRET_KEY": "worker-test-secret-key-" + uuid.uuid4().hex,
            "LEDGER_SIGNING_KEY": TEST_LEDGER_SIGNING_KEY,
            "MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
            "PYTHONUNBUFFERED": "1",
            # A lost worker's unacknowledged chunk comes back within a second of its visibility timeout.
            "CELERY_UNACKED_RESTORE_INTERVAL": "1",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
            **(env or {}),
        }
        command = [
            sys.executable, "-m", "tests.valuation.runs.worker_process", broker.queue,
            "--pool=prefork", f"--concurrency={concurrency}", "--without-heartbeat", "--without-gossip",
            "--without-mingle", "--loglevel=INFO", f"--hostname={log_path.stem}-{uuid.uuid4().hex[:8]}@%h",
        ]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=django_settings.BASE_DIR, env=environment, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole group: the main process and its pool children, no shutdown."""
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown (unacknowledged messages go back to the queue), then SIGKILL."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)  # the main process stops its pool itself
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)  # any pool child left behind
        self.process.wait(timeout=10)

    def _signal_group(self, signum) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextmanager
def worker_process(broker: Broker, log_path: Path, **options):
    worker = WorkerProcess(broker, log_path, **options)
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def worker_thread(broker: Broker):
    """Celery's in-thread test worker (solo pool) on the test's queue."""
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30,
                      queues=[broker.queue]):
        yield


def wait_for(condition, *, what: str, timeout: float = RUN_TIMEOUT, workers=()):
    """Poll ``condition()`` until it returns something true; fail naming ``what`` if it
    does not within ``timeout`` seconds or a worker process dies meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        dead = [worker for worker in workers if not worker.alive()]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.log_path.name} ---\n{w.log_tail()}" for w in workers)
            reason = "a worker process exited" if dead else f"not within {timeout} s"
            pytest.fail(f"{what}: {reason}.\n{logs}", pytrace=False)
        time.sleep(POLL_SECONDS)


def finished(run_id):
    """A condition: the run, once it has ended."""

    def check():
        run = ValuationRun.objects.get(pk=run_id)
        return run if run.is_finished else None

    return check


# -- the embedded path, scores and ledger -----------------------------------------------------


@contextmanager
def in_process():
    """Tasks run in-process, as in the embedded default without a broker."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = saved


def value_in_process(**request) -> ValuationRun:
    # No transaction is open in a transactional test: the run's tasks run as it commits.
    with in_process():
        run = valuation_run_start(**request)
    run.refresh_from_db()
    assert run.status == SUCCEEDED, run.error_message
    return run


def _bits(value):
    return None if value is None else float(value).hex()


def scores(run: ValuationRun) -> dict:
    """Every stored figure of the run's scores, floats as their exact bits."""
    return {
        score.participant.slug: {
            "value": _bits(score.value), "stderr": _bits(score.stderr), "ci_low": _bits(score.ci_low),
            "ci_high": _bits(score.ci_high), "share": _bits(score.share), "rank": score.rank,
            "per_round": {t: _bits(v) for t, v in score.per_round.items()},
        }
        for score in ParticipantScore.objects.filter(valuation_run=run).select_related("participant")
    }


def ledger_entries(run: ValuationRun) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(reference_type="valuation_run", reference_id=str(run.pk)))


def assert_recorded_once(run: ValuationRun) -> None:
    entries = ledger_entries(run)
    assert len(entries) == 1, f"{len(entries)} ledger entries for run {run.pk}"
    assert run.ledger_entry_seq == entries[0].seq
    assert entries[0].consortium_id == run.consortium_id


def valued_training_run(consortium, slugs, *, name: str, rounds: int, seed: int, rows: int = 60):
    """A logistic training run of ``consortium`` whose participants ``slugs`` uploaded ``rounds`` rounds
    (a validation set of ``rows`` rows)."""
    key = ApiKeyFactory(consortium=consortium, scopes=["ingest", "validation"])
    actor = Principal(api_key=key)
    training_run = training_run_create(actor=actor, consortium=consortium, name=name, model_family="logistic",
                                       task="binary", metric="neg_log_loss", parameter_spec=LOGISTIC_SPEC)
    existing = {p.slug: p for p in consortium.participants.all()}
    participants = [existing.get(slug) or ParticipantFactory(consortium=consortium, slug=slug) for slug in slugs]
    upload_rounds(actor=actor, training_run=training_run, participants=participants, rounds=rounds, seed=seed,
                  rows=rows)
    return training_run


def stored_utilities(run: ValuationRun) -> dict:
    """The run's stores: (round, coalition) → (row id, utility bits); an enumerated round's
    blocks key by key."""
    stored = {
        (t, coalition): (pk, _bits(utility))
        for pk, t, coalition, utility in CoalitionUtility.objects.filter(valuation_run=run).values_list(
            "pk", "round", "coalition", "utility"
        )
    }
    for pk, t, first, block in UtilityBlock.objects.filter(valuation_run=run).values_list(
        "pk", "round", "first_key", "utilities"
    ):
        for offset, utility in enumerate(np.frombuffer(bytes(block), dtype="<f8").tolist()):
            stored[(t, first + offset)] = (pk, _bits(utility))
    return stored


def store_contents(run: ValuationRun) -> dict:
    """(round, coalition) → utility bits."""
    return {key: bits for key, (_, bits) in stored_utilities(run).items()}


def partly_stored_rounds(run: ValuationRun) -> list[int]:
    """Rounds whose chunk in progress has stored some of its utilities but not all: its
    worker is half-way through it. (Assumes one worker process at a time, so at most one
    chunk in progress.)"""
    done: dict[int, int] = {}
    for t, first, last in run.chunks.filter(done=True).values_list("round", "first_key", "last_key"):
        done[t] = done.get(t, 0) + last - first
    stored = {row["round"]: row["n"] for row in
              CoalitionUtility.objects.filter(valuation_run=run).values("round").annotate(n=Count("pk"))}
    for t, block in UtilityBlock.objects.filter(valuation_run=run).values_list("round", "utilities"):
        stored[t] = stored.get(t, 0) + len(bytes(block)) // 8
    return [t for t, n in stored.items() if 0 < n - done.get(t, 0) < run.chunk_budget]


# -- tests ------------------------------------------------------------------------------------


def test_a_worker_process_values_a_run_bit_for_bit_like_the_embedded_path(
    broker, uploaded_run, valuation_key, valuer, settings, tmp_path
):
    settings.VALUATION_CHUNK_BUDGET = 16  # two independent estimates per round: chunk seeds matter
    request = {"method": "auto", "budget": 120, "seed": 20260501}
    reference = value_in_process(actor=Principal(api_key=valuation_key), training_run=uploaded_run, **request)
    broker.purge()

    response = valuer.post("/api/v1/valuation-runs/", {"training_run": str(uploaded_run.pk), **request})
    assert response.status_code == 202, response.json()
    run_id = response.json()["id"]
    with worker_process(broker, tmp_path / "worker.log") as worker:
        run = wait_for(finished(run_id), what="the run did not finish", workers=[worker])

    assert run.status == SUCCEEDED, run.error_message
    assert run.chunks.count() >= 2 * len(run.rounds), "the run was not spread over several chunks per round"
    assert not run.chunks.filter(done=False).exists()
    assert run.input_digest == reference.input_digest
    assert scores(run) == scores(reference)
    assert len(scores(run)) == 6
    assert (run.evaluations, run.details) == (reference.evaluations, reference.details)
    assert_recorded_once(run)
    body = valuer.get(f"/api/v1/valuation-runs/{run_id}/").json()
    assert body["status"] == "succeeded"
    assert {row["participant"]: row["value"] for row in body["scores"]} == {
        slug: float.fromhex(score["value"]) for slug, score in scores(reference).items()
    }


def test_a_run_whose_worker_is_killed_mid_run_ends_with_the_same_scores_and_one_ledger_entry(
    broker, consortium, participants, valuation_key, settings, tmp_path
):
    # 13 participants, 3 rounds of 8192 coalitions, one chunk each that stores its
    # utilities in two batches (ENUMERATION_BATCH = 4096); 20,000 validation rows make a
    # batch take about a quarter of a second: time enough to kill the chunk half-way.
    settings.VALUATION_CHUNK_BUDGET = 2**13
    slugs = [p.slug for p in participants] + [f"plant-{i:02d}" for i in range(10)]
    training_run = valued_training_run(consortium, slugs, name="thirteen", rounds=3, seed=5, rows=20_000)
    request = {"actor": Principal(api_key=valuation_key), "training_run": training_run, "method": "exact",
               "seed": 99}
    reference = value_in_process(**request)
    broker.purge()
    run = valuation_run_start(**request)
    # The broker gives an unacknowledged message back after the visibility timeout.
    env = {"CELERY_VISIBILITY_TIMEOUT": "5"}

    with worker_process(broker, tmp_path / "killed.log", env=env) as killed:
        # Mid-run: a chunk is done, another has stored part of its utilities and is held
        # by the worker, unacknowledged.
        wait_for(lambda: run.chunks.filter(done=True).exists() and partly_stored_rounds(run) and broker.unacked(),
                 what="the worker did not get half-way through a chunk", workers=[killed])
        killed.kill()
        run.refresh_from_db()
        assert run.status == RUNNING
        assert partly_stored_rounds(run), "no chunk was half-way through at the kill"
        assert broker.unacked() >= 1, "no message was in flight at the kill"
        before = stored_utilities(run)
        killed_log = killed.log_tail()

    with worker_process(broker, tmp_path / "second.log", env=env) as second:
        run = wait_for(finished(run.pk), what="the run did not finish after the kill", workers=[second])

    assert run.status == SUCCEEDED, f"{run.error_message}\n{killed_log}"
    assert scores(run) == scores(reference)
    assert len(scores(run)) == 13
    assert_recorded_once(run)
    after = stored_utilities(run)
    # What the killed worker stored is kept as it was (same rows, same bits): the store
    # that the re-delivered chunk reads before it computes anything.
    assert {key: after.get(key) for key in before} == before
    assert len(after) == run.evaluations == reference.evaluations == 3 * 2**13
    assert not broker.unacked()


def test_two_concurrent_runs_of_different_consortia_do_not_mix(
    broker, consortium, uploaded_run, valued_participants, valuation_key, settings, tmp_path
):
    settings.VALUATION_CHUNK_BUDGET = 16
    # Another consortium whose participants share three slugs with this one's.
    other = ConsortiumFactory(slug="globex", name="Globex")
    other_run = valued_training_run(other, ["alpha", "beta", "gamma", "delta", "epsilon"], name="globex-run",
                                    rounds=3, seed=8)
    other_key = ApiKeyFactory(consortium=other, scopes=["valuation"])
    request = {"method": "auto", "budget": 120, "seed": 42}
    requests = [
        {"actor": Principal(api_key=valuation_key), "training_run": uploaded_run, **request},
        {"actor": Principal(api_key=other_key), "training_run": other_run, **request},
    ]
    references = [value_in_process(**r) for r in requests]
    broker.purge()
    runs = [valuation_run_start(**r) for r in requests]  # both queued before a worker takes either

    with worker_process(broker, tmp_path / "worker.log", concurrency=2) as worker:
        runs = [wait_for(finished(run.pk), what=f"run {run.pk} did not finish", workers=[worker]) for run in runs]

    for run, reference, consortium_, participants_ in zip(
        runs, references, [consortium, other], [valued_participants, list(other.participants.all())]
    ):
        assert run.status == SUCCEEDED, run.error_message
        assert run.consortium == consortium_
        assert set(scores(run)) == {p.slug for p in participants_}
        assert set(ParticipantScore.objects.filter(valuation_run=run).values_list("participant__consortium",
                                                                                   flat=True)) == {consortium_.pk}
        assert scores(run) == scores(reference)
        assert_recorded_once(run)
        # Its coalition store holds exactly what its own chunks computed, as in-process.
        assert store_contents(run) == store_contents(reference)


def test_a_chunk_that_keeps_failing_fails_the_run_with_a_readable_error_and_no_ledger_entry(
    broker, consortium, uploaded_run, valuation_key, tmp_path
):
    actor = Principal(api_key=valuation_key)
    other_run = valued_training_run(consortium, ["alpha", "beta", "gamma"], name="corrupted", rounds=2, seed=3)
    broker.purge()
    # A stored update that disappears after the request: the chunk that reads it is
    # retried with backoff (storage errors may pass), then fails the run.
    missing_run = valuation_run_start(actor=actor, training_run=uploaded_run, method="exact", seed=1)
    update = ParticipantUpdate.objects.select_related("payload").get(training_run=uploaded_run, round=1,
                                                                      participant__slug="beta")
    default_storage.delete(update.payload.storage_name)
    # A validation set whose stored bytes changed: no retry can help, the run fails at once.
    corrupted_run = valuation_run_start(actor=actor, training_run=other_run, method="exact", seed=1)
    validation = corrupted_run.validation_set.payload
    with open(default_storage.path(validation.storage_name), "r+b") as stored:
        stored.seek(-1, os.SEEK_END)
        last = stored.read(1)
        stored.seek(-1, os.SEEK_END)
        stored.write(bytes([last[0] ^ 0xFF]))
    # Three attempts: two retries after 1-2 s and 2-4 s.
    env = {"VALUATION_TASK_MAX_RETRIES": "2"}

    with worker_process(broker, tmp_path / "worker.log", env=env) as worker:
        missing_run, corrupted_run = (
            wait_for(finished(run.pk), what=f"run {run.pk} did not end", workers=[worker])
            for run in (missing_run, corrupted_run)
        )

    failing_chunk = missing_run.chunks.get(round=1)
    assert missing_run.status == FAILED
    message = missing_run.error_message
    assert "kept failing (3 attempts): FileNotFoundError" in message, message
    assert update.payload.sha256[:12] in message, message  # which stored file is missing
    assert not failing_chunk.done
    assert corrupted_run.status == FAILED
    message = corrupted_run.error_message
    assert "failed: PayloadCorrupted: stored payload " + validation.sha256[:12] in message, message
    assert "restore it from a backup" in message
    for run in (missing_run, corrupted_run):
        assert run.finished_at is not None
        assert not ledger_entries(run)
        assert not ParticipantScore.objects.filter(valuation_run=run).exists()
        assert run.ledger_entry_seq is None


def test_a_run_started_twice_with_the_same_idempotency_key_is_one_run(broker, uploaded_run, valuer):
    body = {"training_run": str(uploaded_run.pk), "method": "exact", "seed": 5}
    headers = {"HTTP_IDEMPOTENCY_KEY": "value-pump-failure-once"}
    broker.purge()
    first = valuer.post("/api/v1/valuation-runs/", body, **headers)
    second = valuer.post("/api/v1/valuation-runs/", body, **headers)
    assert (first.status_code, second.status_code) == (202, 200), second.json()
    assert second.json()["id"] == first.json()["id"]
    assert ValuationRun.objects.count() == 1

    with worker_thread(broker):
        run = wait_for(finished(first.json()["id"]), what="the run did not finish")
        third = valuer.post("/api/v1/valuation-runs/", body, **headers)

    assert run.status == SUCCEEDED, run.error_message
    assert (third.status_code, third.json()["id"]) == (200, str(run.pk))
    changed = valuer.post("/api/v1/valuation-runs/", {**body, "seed": 6}, **headers)
    assert changed.status_code in (409, 422), changed.json()
    assert ValuationRun.objects.count() == 1
    assert_recorded_once(run)


def test_cancelling_a_running_run_revokes_its_outstanding_chunks_and_records_nothing(
    broker, consortium, participants, valuer, settings, tmp_path
):
    # 12 participants, 3 rounds of 4096 coalitions, 4 chunks each.
    settings.VALUATION_CHUNK_BUDGET = 1024
    slugs = [p.slug for p in participants] + [f"plant-{i:02d}" for i in range(9)]
    training_run = valued_training_run(consortium, slugs, name="twelve", rounds=3, seed=6)
    broker.purge()
    broker.forget_chunk_results()
    response = valuer.post("/api/v1/valuation-runs/", {"training_run": str(training_run.pk), "method": "exact",
                                                       "seed": 3})
    assert response.status_code == 202, response.json()
    run = ValuationRun.objects.get(pk=response.json()["id"])

    with worker_process(broker, tmp_path / "worker.log") as worker:
        wait_for(lambda: run.chunks.filter(done=True).exists(), what="no chunk was done", workers=[worker])
        cancelled = valuer.post(f"/api/v1/valuation-runs/{run.pk}/cancel/")
        assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled"), cancelled.json()
        outstanding = list(run.chunks.filter(done=False))
        assert len(outstanding) >= 4, "the run had nearly finished when it was cancelled"
        revoked = wait_for(lambda: celery_app.control.inspect(timeout=2).revoked(), what="the worker did not answer",
                           timeout=20, workers=[worker])
        # The worker consumes the rest of the queue, discarding what was revoked.
        results = {chunk.task_id: AsyncResult(chunk.task_id, app=celery_app) for chunk in outstanding}
        wait_for(lambda: all(result.state in states.READY_STATES for result in results.values()),
                 what="the outstanding chunks were not all consumed", timeout=30, workers=[worker])

    assert {chunk.task_id for chunk in outstanding} <= set().union(*revoked.values())
    discarded = [task_id for task_id, result in results.items() if result.state == states.REVOKED]
    # Only a chunk already running when the revocation arrived (at most one per pool
    # process, and one just taken) was not discarded; it stopped at the cancelled status.
    assert len(discarded) >= len(outstanding) - 2, {task_id: r.state for task_id, r in results.items()}
    run.refresh_from_db()
    assert run.status == CANCELLED
    assert run.chunks.filter(done=False).count() == len(outstanding)
    assert not ledger_entries(run)
    assert not ParticipantScore.objects.filter(valuation_run=run).exists()
    assert run.ledger_entry_seq is None
