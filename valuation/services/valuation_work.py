"""Valuation runs as workers do them: plan the chunks, run one chunk, finish the run.

Each step is idempotent, so a task delivered twice (a lost worker, a retry) changes
nothing the first delivery already did:

- ``valuation_run_plan`` creates the run's chunks (unique per run, round and index) and
  returns the ones not yet done;
- ``valuation_chunk_run`` computes through the run's coalition store
  (:mod:`valuation.coalition_store`), so a re-delivered chunk reuses the utilities its
  lost worker had stored, and records its result once;
- ``valuation_run_finish`` combines the chunks and writes the scores, the run's status
  and exactly one ledger entry (idempotency key ``valuation-run:<id>``) in one
  transaction, once; a cancelled, failed or finished run is left as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache, partial

import numpy as np
from django.db import transaction
from django.utils import timezone

from ledger.services import entry_append
from valuation.chunking import ENUMERATE, aligned_blocks, plan_chunks
from valuation.coalition_store import DatabaseCoalitionCache
from valuation.engine import FLRoundGame, estimate
from valuation.engine.cache import masks_from_keys
from valuation.engine.estimators.exact import shapley_from_table
from valuation.models import CoalitionUtility, ParticipantScore, TrainingRun, UtilityBlock, ValuationChunk, ValuationRun
from valuation.npz import npz_read
from valuation.services.payloads import payload_bytes
from valuation.services.valuation_runs import RoundInputs, input_digest, minimum_budget, round_inputs
from valuation.signals import valuation_run_succeeded

logger = logging.getLogger(__name__)

__all__ = ["valuation_chunk_run", "valuation_run_finish", "valuation_run_plan"]

# Coalitions per utility call and per store write while enumerating: a killed worker
# loses at most one batch of work.
ENUMERATION_BATCH = 4096
# z for a two-sided 95 % interval.
Z95 = 1.959963984540054
# The ledger entry carries the scores while they fit in it; beyond, their digest only.
LEDGER_SCORES_MAX_BYTES = 48 * 1024


# -- inputs ----------------------------------------------------------------------------


@lru_cache(maxsize=64)  # per worker process; payloads are immutable (content-addressed)
def payload_arrays(sha256: str) -> dict[str, np.ndarray]:
    """A stored payload's arrays, its bytes checked against its hash first."""
    from valuation.models import Payload

    name = Payload.objects.values_list("storage_name", flat=True).get(pk=sha256)
    arrays = npz_read(payload_bytes(sha256=sha256, storage_name=name))
    for array in arrays.values():
        array.flags.writeable = False
    return arrays


def round_game(run: ValuationRun, inputs: RoundInputs) -> FLRoundGame:
    training_run: TrainingRun = run.training_run
    validation = payload_arrays(run.validation_set.payload_id)
    return FLRoundGame(
        family=training_run.model_family, task=training_run.task, metric=run.metric,
        global_weights=payload_arrays(inputs.global_weights),
        updates=[payload_arrays(sha) for _, sha, _ in inputs.updates],
        num_examples=[count for _, _, count in inputs.updates],
        X=validation["X"], y=validation["y"],
        participants=[slug for slug, _, _ in inputs.updates],
    )


def _inputs(run: ValuationRun) -> dict[int, RoundInputs]:
    """The rounds' inputs as the run was requested (and planning checked against its digest)."""
    if not run.inputs:  # a run requested before the inputs were kept with it
        return _current_inputs(run)
    return {r.round: r for r in map(RoundInputs.from_json, run.inputs)}


def _current_inputs(run: ValuationRun) -> dict[int, RoundInputs]:
    return {r.round: r for r in round_inputs(training_run=run.training_run, rounds=list(run.rounds))}


# -- plan ------------------------------------------------------------------------------


def valuation_run_plan(*, valuation_run_id) -> list[int]:
    """Create the run's chunks (once) and return the ids of those not yet done."""
    with transaction.atomic():
        run = ValuationRun.objects.select_for_update().select_related("training_run").get(pk=valuation_run_id)
        if run.is_finished:
            return []
        if not run.chunks.exists():
            inputs = list(_current_inputs(run).values())
            digest = input_digest(
                training_run=run.training_run, inputs=inputs, validation_set=run.validation_set, method=run.method,
                budget=run.budget, tolerance=run.tolerance, metric=run.metric, chunk_budget=run.chunk_budget,
            )
            if digest != run.input_digest:
                raise InputsChanged("the training run's inputs changed between the request and its planning")
            plans = plan_chunks(
                method=run.method, budget=run.budget, tolerance=run.tolerance, seed=run.seed,
                round_sizes=[(r.round, r.n_players) for r in inputs], chunk_budget=run.chunk_budget,
                minimum=minimum_budget,
            )
            ValuationChunk.objects.bulk_create(
                ValuationChunk(valuation_run=run, round=p.round, index=p.index, kind=p.kind, method=p.method,
                               budget=p.budget, first_key=p.first_key, last_key=p.last_key, seed=p.seed)
                for p in plans
            )
            totals = [p.evaluations for p in plans]
            run.progress_total = sum(totals) if None not in totals else 0
            run.status, run.started_at = ValuationRun.Status.RUNNING, timezone.now()
            run.save(update_fields=["status", "started_at", "progress_total"])
        return list(run.chunks.filter(done=False).order_by("round", "index").values_list("id", flat=True))


class InputsChanged(RuntimeError):
    """An update or round changed after the run was requested: its digest no longer holds."""


# -- one chunk -------------------------------------------------------------------------


def valuation_chunk_run(*, chunk_id: int) -> bool:
    """Compute one chunk (unless done or its run ended); True when it was the run's last."""
    chunk = ValuationChunk.objects.select_related("valuation_run__training_run", "valuation_run__validation_set").get(
        pk=chunk_id
    )
    run = chunk.valuation_run
    if run.is_finished:
        return False
    if chunk.done:  # delivered again: its worker may have died before finishing the run
        return not run.chunks.filter(done=False).exists()
    game = round_game(run, _inputs(run)[chunk.round])
    if chunk.kind == ENUMERATE:
        if not _enumerate(run, chunk, game):
            return False
        result = {"values": None, "stderr": None, "evaluations": chunk.last_key - chunk.first_key,
                  "result_method": "exact"}
    else:
        cache = DatabaseCoalitionCache(valuation_run_id=run.pk, round=chunk.round, n_players=game.n_players)
        estimated = estimate(game, method=chunk.method, budget=chunk.budget, tolerance=run.tolerance,
                             seed=chunk.seed, cache=cache)
        result = {"values": estimated.values.tolist(), "stderr": estimated.stderr.tolist(),
                  "evaluations": estimated.evaluations, "result_method": estimated.method}
    return _record_chunk(run.pk, chunk.pk, result)


def _enumerate(run: ValuationRun, chunk: ValuationChunk, game) -> bool:
    """Store the utilities of the chunk's key range, one block per batch (skipping the blocks
    a lost worker had stored); False if the run ended."""
    stored = set(UtilityBlock.objects.filter(
        valuation_run_id=run.pk, round=chunk.round, first_key__gte=chunk.first_key, first_key__lt=chunk.last_key,
    ).values_list("first_key", flat=True))
    starts = range(chunk.first_key, chunk.last_key, ENUMERATION_BATCH)
    for start in starts:
        if start not in stored:
            utilities = _utilities(game, start, min(start + ENUMERATION_BATCH, chunk.last_key))
            # A concurrent worker may have stored the same block: its values are the same.
            UtilityBlock.objects.bulk_create([UtilityBlock(valuation_run_id=run.pk, round=chunk.round, first_key=start,
                                                           utilities=utilities.tobytes())], ignore_conflicts=True)
        # Cancelled meanwhile? (After the last batch, recording the chunk checks that.)
        if start != starts[-1] and not _still_running(run.pk):
            return False
    return True


def _still_running(run_id) -> bool:
    return ValuationRun.objects.filter(pk=run_id, status=ValuationRun.Status.RUNNING).exists()


def _utilities(game, first: int, last: int) -> np.ndarray:
    """Utilities of the coalitions keyed ``first <= key < last``, as little-endian float64.
    A game that enumerates aligned blocks itself (FL rounds: one addition per coalition,
    the same bits as ``utility``) computes the range as such blocks, as the engine's exact
    estimator does in-process."""
    block_bits = getattr(game, "block_bits", 0)
    if not (callable(getattr(game, "utility_block", None)) and isinstance(block_bits, int) and block_bits >= 1):
        keys = np.arange(first, last, dtype=np.int64)
        return np.asarray(game.utility(masks_from_keys(keys, game.n_players)), dtype="<f8")
    return np.concatenate([np.asarray(game.utility_block(start, bits), dtype="<f8")
                           for start, bits in aligned_blocks(first, last, block_bits)])


def _record_chunk(run_id, chunk_id: int, result: dict) -> bool:
    with transaction.atomic():
        run = ValuationRun.objects.select_for_update().get(pk=run_id)
        if run.is_finished:
            return False
        updated = ValuationChunk.objects.filter(pk=chunk_id, done=False).update(
            done=True, finished_at=timezone.now(), **result
        )
        if updated:
            run.progress_done += result["evaluations"]
            run.save(update_fields=["progress_done"])
        return not run.chunks.filter(done=False).exists()


# -- finish ----------------------------------------------------------------------------


def valuation_run_finish(*, valuation_run_id) -> ValuationRun:
    """Combine the chunks into scores and record them, with one ledger entry, once."""
    run = ValuationRun.objects.select_related("training_run", "validation_set", "consortium").get(pk=valuation_run_id)
    if run.status != ValuationRun.Status.RUNNING or run.chunks.filter(done=False).exists():
        return run
    players, per_round, variance, details, present = _combine(run)
    values = per_round.sum(axis=0)
    stderr = np.sqrt(variance)
    # Sampled rounds store each distinct coalition once; enumerated rounds all 2^n, in blocks.
    evaluations = CoalitionUtility.objects.filter(valuation_run=run).count() + sum(
        run.chunks.filter(kind=ENUMERATE).values_list("evaluations", flat=True)
    )
    with transaction.atomic():
        run = ValuationRun.objects.select_for_update().select_related("consortium").get(pk=valuation_run_id)
        if run.status != ValuationRun.Status.RUNNING:
            return run
        scores = _scores(run, players, values, stderr, per_round, present)
        ParticipantScore.objects.bulk_create(scores)
        entry = entry_append(
            consortium=run.consortium, kind="record", body=_ledger_body(run, scores, evaluations),
            actor="system:valuation-worker", reference_type="valuation_run", reference_id=str(run.pk),
            # It concerns no participant on purpose: it holds every participant's figures, and a
            # participant user reads the entries that concern it (the transparency setting
            # decides what it sees of the others, through the API).
            participants=(), idempotency_key=f"valuation-run:{run.pk}",
        )
        run.status, run.finished_at = ValuationRun.Status.SUCCEEDED, timezone.now()
        run.evaluations, run.details, run.ledger_entry_seq = evaluations, details, entry.seq
        run.progress_done = max(run.progress_done, run.progress_total)
        run.save(update_fields=["status", "finished_at", "evaluations", "details", "ledger_entry_seq",
                                "progress_done"])
        transaction.on_commit(partial(_announce_success, run))
    return run


def _announce_success(run: ValuationRun) -> None:
    for receiver, outcome in valuation_run_succeeded.send_robust(sender=ValuationRun, run=run):
        if isinstance(outcome, Exception):
            logger.error("valuation_run_succeeded receiver failed", exc_info=outcome,
                         extra={"valuation_run": str(run.pk), "receiver": getattr(receiver, "__qualname__", "?")})


def _combine(run: ValuationRun):
    """Per-round values over the run's players (slugs, ascending), their summed variance,
    per-round details and who took part in each round."""
    inputs = _inputs(run)
    players = sorted({slug for r in inputs.values() for slug, _, _ in r.updates})
    column = {slug: i for i, slug in enumerate(players)}
    per_round = np.zeros((len(run.rounds), len(players)))
    variance = np.zeros(len(players))
    details = {"rounds": []}
    chunks_by_round: dict[int, list[ValuationChunk]] = {}
    for chunk in run.chunks.order_by("round", "index"):
        chunks_by_round.setdefault(chunk.round, []).append(chunk)
    for position, t in enumerate(run.rounds):
        chunks = chunks_by_round[t]
        values, round_variance, method = _round_values(run, inputs[t], chunks)
        columns = [column[slug] for slug, _, _ in inputs[t].updates]
        per_round[position, columns] = values
        variance[columns] += round_variance
        details["rounds"].append({"round": t, "method": method, "chunks": len(chunks),
                                  "evaluations": sum(c.evaluations for c in chunks)})
    present = [{slug for slug, _, _ in inputs[t].updates} for t in run.rounds]
    return players, per_round, variance, details, present


def _round_values(run: ValuationRun, inputs: RoundInputs, chunks: list[ValuationChunk]):
    if chunks[0].kind == ENUMERATE:
        table = _round_table(run.pk, inputs.round, inputs.n_players)
        return shapley_from_table(table, inputs.n_players), np.zeros(inputs.n_players), "exact"
    # Independent estimates: the budget-weighted mean, whose variance is Σ w² se².
    weights = np.array([c.budget or 1 for c in chunks], dtype=np.float64)
    weights /= weights.sum()
    values = sum(w * np.array(c.values) for w, c in zip(weights, chunks))
    variance = sum(w**2 * np.array(c.stderr) ** 2 for w, c in zip(weights, chunks))
    methods = sorted({c.result_method for c in chunks})
    return values, variance, "+".join(methods)


def _round_table(run_id, t: int, n_players: int) -> np.ndarray:
    """Every coalition's utility of an enumerated round (index: the coalition's bitmask),
    read back from its blocks; the engine's exact estimator builds the same table."""
    table = np.empty(1 << n_players)
    filled = 0
    for first_key, block in UtilityBlock.objects.filter(valuation_run_id=run_id, round=t).values_list(
        "first_key", "utilities"
    ):
        values = np.frombuffer(bytes(block), dtype="<f8")
        table[first_key : first_key + values.size] = values
        filled += values.size
    if filled != table.size:  # blocks never overlap (one per batch start), so this counts the table
        raise RuntimeError(f"round {t} has {filled} of its {table.size} coalition utilities stored")
    return table


def _scores(run, players, values, stderr, per_round, present) -> list[ParticipantScore]:
    """One score per player; ``present[k]`` holds the slugs that took part in round k."""
    participants = {p.slug: p for p in run.consortium.participants.filter(slug__in=players)}
    total = float(values.sum())
    order = sorted(range(len(players)), key=lambda i: (-values[i], players[i]))
    ranks = {}
    for position, i in enumerate(order):
        previous = order[position - 1] if position else None
        ranks[i] = ranks[previous] if previous is not None and values[previous] == values[i] else position + 1
    return [
        ParticipantScore(
            valuation_run=run, participant=participants[slug], value=float(values[i]), stderr=float(stderr[i]),
            ci_low=float(values[i] - Z95 * stderr[i]), ci_high=float(values[i] + Z95 * stderr[i]),
            share=float(values[i] / total) if total > 0 else None, rank=ranks[i],
            per_round={str(t): float(per_round[k, i]) for k, t in enumerate(run.rounds) if slug in present[k]},
        )
        for i, slug in enumerate(players)
    ]


def _ledger_body(run: ValuationRun, scores: list[ParticipantScore], evaluations: int) -> dict:
    table = [[score.participant.slug, repr(score.value), repr(score.stderr)] for score in scores]
    encoded = json.dumps(table, separators=(",", ":")).encode()
    body = {
        "type": "valuation",
        "valuation_run": str(run.pk),
        "training_run": str(run.training_run_id),
        "input_digest": run.input_digest,
        "method": run.method,
        "budget": None if run.budget is None else str(run.budget),
        "tolerance": None if run.tolerance is None else repr(run.tolerance),
        "seed": str(run.seed),
        "metric": run.metric,
        "rounds": list(run.rounds),
        "engine_version": run.engine_version,
        "evaluations": str(evaluations),
        "scores_columns": ["participant", "value", "stderr"],
        "scores_sha256": hashlib.sha256(encoded).hexdigest(),
    }
    if len(encoded) <= LEDGER_SCORES_MAX_BYTES:
        body["scores"] = table
    return body

