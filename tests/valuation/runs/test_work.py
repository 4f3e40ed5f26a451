"""The workers' steps, called directly: every step idempotent, chunks in any order giving
the same scores, the coalition store reused, changed inputs and broken payloads failing
the run with a readable message and no ledger entry."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from django.core.files.storage import default_storage

from consortium.access import Principal
from ledger.models import LedgerEntry
from tests.valuation.conftest import logistic_arrays, npz_bytes
from valuation.coalition_store import DatabaseCoalitionCache
from valuation.engine.cache import masks_from_keys
from valuation.models import CoalitionUtility, Payload, UtilityBlock, ValuationRun
from valuation.services import update_upload, valuation_run_start
from valuation.services.valuation_work import (
    ENUMERATION_BATCH,
    _inputs,
    _utilities,
    payload_arrays,
    round_game,
    valuation_chunk_run,
    valuation_run_finish,
    valuation_run_plan,
)
from valuation.tasks import valuation_chunk_task, valuation_run_finish_task, valuation_run_plan_task

pytestmark = pytest.mark.django_db(transaction=True)


def _requested(run, key, **fields) -> ValuationRun:
    """A run whose tasks were not enqueued: the test drives the steps itself."""
    with mock.patch("valuation.services.valuation_runs.valuation_run_enqueue"):
        return valuation_run_start(actor=Principal(api_key=key), training_run=run, **fields)


def _scores(run) -> dict:
    return {s.participant.slug: (s.value, s.stderr, s.per_round) for s in run.scores.select_related("participant")}


def _drive(run, order=lambda ids: ids):
    for chunk_id in order(valuation_run_plan(valuation_run_id=run.pk)):
        valuation_chunk_run(chunk_id=chunk_id)
    return valuation_run_finish(valuation_run_id=run.pk)


@pytest.mark.parametrize("fields", [{"method": "exact"}, {"method": "stratified", "budget": 150, "seed": 3}])
def test_chunks_in_any_order_and_any_chunk_size_choice_of_workers_give_the_same_scores(
    uploaded_run, valuation_key, settings, fields
):
    settings.VALUATION_CHUNK_BUDGET = 20
    forward = _drive(_requested(uploaded_run, valuation_key, **fields))
    backward = _drive(_requested(uploaded_run, valuation_key, **fields), order=lambda ids: list(reversed(ids)))
    assert forward.status == backward.status == "succeeded"
    assert forward.chunks.count() > 3
    assert _scores(forward) == _scores(backward)


def test_every_step_delivered_twice_changes_nothing_and_records_one_ledger_entry(uploaded_run, valuation_key):
    run = _requested(uploaded_run, valuation_key, method="permutation", budget=90, seed=2)
    chunk_ids = valuation_run_plan(valuation_run_id=run.pk)
    assert valuation_run_plan(valuation_run_id=run.pk) == chunk_ids
    for chunk_id in chunk_ids:
        valuation_chunk_run(chunk_id=chunk_id)
    run.refresh_from_db()
    progress = run.progress_done
    assert valuation_chunk_run(chunk_id=chunk_ids[0]) is True  # again: the run is complete, finish may follow
    run.refresh_from_db()
    assert run.progress_done == progress
    valuation_run_finish(valuation_run_id=run.pk)
    first = _scores(run)
    valuation_run_finish(valuation_run_id=run.pk)
    assert valuation_chunk_run(chunk_id=chunk_ids[0]) is False
    assert _scores(run) == first and run.scores.count() == len(first)
    assert LedgerEntry.objects.filter(reference_type="valuation_run", reference_id=str(run.pk)).count() == 1


def test_a_redelivered_chunk_reuses_the_utilities_already_stored(uploaded_run, valuation_key):
    run = _requested(uploaded_run, valuation_key, method="exact")
    first = valuation_run_plan(valuation_run_id=run.pk)[0]
    chunk = run.chunks.get(pk=first)
    # As if a lost worker had stored the chunk's first batch: it is not computed again.
    planted = (np.arange(min(ENUMERATION_BATCH, chunk.last_key - chunk.first_key)) + 1000.0).astype("<f8")
    UtilityBlock.objects.create(valuation_run=run, round=chunk.round, first_key=chunk.first_key,
                                utilities=planted.tobytes())
    valuation_chunk_run(chunk_id=first)
    blocks = dict(UtilityBlock.objects.filter(valuation_run=run, round=chunk.round).values_list("first_key", "utilities"))
    assert bytes(blocks[chunk.first_key]) == planted.tobytes()
    assert sum(len(bytes(block)) // 8 for block in blocks.values()) == chunk.last_key - chunk.first_key


def test_inputs_changed_after_the_request_fail_the_run_readably(uploaded_run, valuation_key, ingest_key,
                                                                 valued_participants, consortium):
    from tests.factories import ParticipantFactory

    run = _requested(uploaded_run, valuation_key, method="exact")
    update_upload(actor=Principal(api_key=ingest_key), training_run=uploaded_run, round=1,
                  participant=ParticipantFactory(consortium=consortium, slug="latecomer"),
                  data=npz_bytes(**logistic_arrays(9)), num_examples=10)
    valuation_run_plan_task.delay(str(run.pk))
    run.refresh_from_db()
    assert run.status == "failed"
    assert "inputs changed" in run.error_message
    assert not LedgerEntry.objects.filter(reference_type="valuation_run").exists()


def test_a_corrupted_payload_fails_the_run_with_a_message_naming_it_and_no_ledger_entry(uploaded_run, valuation_key):
    run = _requested(uploaded_run, valuation_key, method="exact")
    payload = Payload.objects.get(pk=run.validation_set.payload_id)
    with default_storage.open(payload.storage_name, "wb") as stored:
        stored.write(b"not the uploaded bytes")
    payload_arrays.cache_clear()
    chunk_ids = valuation_run_plan(valuation_run_id=run.pk)
    valuation_chunk_task.delay(str(run.pk), chunk_ids[0])
    run.refresh_from_db()
    assert run.status == "failed"
    assert f"stored payload {payload.sha256[:12]}" in run.error_message and "PayloadCorrupted" in run.error_message
    assert valuation_run_finish(valuation_run_id=run.pk).status == "failed"
    assert not run.scores.exists()
    assert not LedgerEntry.objects.filter(reference_type="valuation_run").exists()


def test_the_coalition_store_returns_exactly_the_stored_floats_and_ignores_a_second_writer(uploaded_run, valuation_key):
    run = _requested(uploaded_run, valuation_key, method="exact")
    store = DatabaseCoalitionCache(valuation_run_id=run.pk, round=0, n_players=72)
    values = {0: 0.1 + 0.2, 2**70 + 5: -1e-300, 7: 1 / 3, 16: 2.5}
    store.put_many(values)
    store.put_many({7: 123.0})  # a concurrent worker's write of a known coalition changes nothing
    assert store.get_many([0, 7, 2**70 + 5, 9, 16]) == values
    assert CoalitionUtility.objects.filter(valuation_run=run).count() == 4
    assert DatabaseCoalitionCache(valuation_run_id=run.pk, round=1, n_players=72).get_many([0, 7]) == {}


@pytest.mark.parametrize(("first", "last"), [(0, 64), (3, 50), (17, 18), (32, 64)])
def test_a_key_range_computed_in_aligned_blocks_has_the_bits_of_the_games_utility(
    uploaded_run, valuation_key, first, last
):
    run = _requested(uploaded_run, valuation_key, method="exact")
    game = round_game(run, _inputs(run)[0])
    keys = np.arange(first, last, dtype=np.int64)
    expected = np.asarray(game.utility(masks_from_keys(keys, game.n_players)), dtype="<f8")
    assert _utilities(game, first, last).tobytes() == expected.tobytes()


def test_a_round_missing_a_stored_block_fails_the_run_readably_at_the_finish(uploaded_run, valuation_key):
    run = _requested(uploaded_run, valuation_key, method="exact")
    for chunk_id in valuation_run_plan(valuation_run_id=run.pk):
        valuation_chunk_run(chunk_id=chunk_id)
    UtilityBlock.objects.filter(valuation_run=run, round=1).delete()
    valuation_run_finish_task.delay(str(run.pk))
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error_message == "finishing failed: RuntimeError: round 1 has 0 of its 64 coalition utilities stored"
    assert not run.scores.exists()
    assert not LedgerEntry.objects.filter(reference_type="valuation_run").exists()


def test_an_update_arriving_after_planning_is_left_out_of_the_run(uploaded_run, valuation_key, ingest_key, consortium):
    from tests.factories import ParticipantFactory

    reference = _drive(_requested(uploaded_run, valuation_key, method="exact"))
    run = _requested(uploaded_run, valuation_key, method="exact")
    chunk_ids = valuation_run_plan(valuation_run_id=run.pk)
    update_upload(actor=Principal(api_key=ingest_key), training_run=uploaded_run, round=1,
                  participant=ParticipantFactory(consortium=consortium, slug="latecomer"),
                  data=npz_bytes(**logistic_arrays(9)), num_examples=10)
    for chunk_id in chunk_ids:
        valuation_chunk_run(chunk_id=chunk_id)
    run = valuation_run_finish(valuation_run_id=run.pk)
    assert run.status == "succeeded"
    assert "latecomer" not in _scores(run)
    assert _scores(run) == _scores(reference)
