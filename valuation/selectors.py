"""Read models of training runs: rounds and who has uploaded what."""

from __future__ import annotations

from collections import defaultdict

from consortium.access import Principal, visible_participants
from valuation.models import GlobalWeights, ParticipantUpdate, TrainingRun, ValidationSet


def training_run_rounds(*, principal: Principal, training_run: TrainingRun) -> list[dict]:
    """One entry per round that has anything uploaded, oldest first.

    A participant user sees the global weights and its own organisation's updates only.
    """
    weights = {w.round: w for w in GlobalWeights.objects.filter(training_run=training_run)}
    updates = defaultdict(list)
    visible = visible_participants(principal, training_run.consortium)
    for update in (
        ParticipantUpdate.objects.filter(training_run=training_run, participant__in=visible)
        .select_related("participant", "payload")
        .order_by("round", "participant__slug")
    ):
        updates[update.round].append(update)
    return [
        {"round": t, "global_weights": weights.get(t), "updates": updates.get(t, [])}
        for t in sorted(set(weights) | set(updates))
    ]


def validation_set_active(*, training_run: TrainingRun) -> ValidationSet | None:
    return training_run.validation_sets.filter(is_active=True).select_related("payload").first()
