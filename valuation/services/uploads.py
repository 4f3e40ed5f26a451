"""Uploads of a training run: global weights, participant updates, validation sets.

Every function is one user action: it checks the upload completely before writing
anything, stages the bytes (``payload_staging``), then writes the payload row, the upload's
row and the audit event in one transaction; the file is published under its final name only
after that transaction commits, and the staged bytes are deleted if it does not
(``valuation.services.payloads`` explains how). Uploads are idempotent on content: the same
bytes again return the stored row (``created=False``), and restore its file if storage lost
it; different bytes for a slot already filled raise ``Conflict``.
"""

from __future__ import annotations

import hashlib
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from consortium.access import Principal
from consortium.audit import audit_record
from consortium.models import Participant
from core.errors import Conflict, InvalidInput, inputs_of
from valuation.engine import check_labels
from valuation.models import GlobalWeights, ParticipantUpdate, TrainingRun, ValidationSet
from valuation.npz import check_headers_against_spec, describe_dtype, npz_inspect, npz_read
from valuation.services.payloads import (
    StagedPayload,
    payload_publish_on_commit,
    payload_restore,
    payload_staging,
    payload_store,
)
from valuation.spec import ArraySpec, class_count, feature_count, names_text

# A participant update is weighted by its number of examples. The bound keeps the figure
# far above any real data set, exactly representable in the engine's float64 weights
# (< 2**53) and inside the column on every database (PositiveBigIntegerField, < 2**63).
MAX_NUM_EXAMPLES = 10**12


def run_arrays(training_run: TrainingRun) -> list[ArraySpec]:
    return [
        ArraySpec(name=a["name"], shape=tuple(a["shape"]), dtype=a["dtype"]) for a in training_run.parameter_spec
    ]


def _publish_and_verify(staged: StagedPayload) -> None:
    """After COMMIT: publish the file, then enqueue its verification (one callback, in that
    order, so the task finds the file); on rollback the staged bytes are deleted."""
    from valuation.tasks import payload_verify_task  # tasks import services; avoid the cycle

    payload_publish_on_commit(staged, then=partial(payload_verify_task.delay, staged.sha256))


def _check_parameter_arrays(training_run: TrainingRun, data: bytes) -> None:
    with inputs_of("file"):
        headers = npz_inspect(data, max_bytes=settings.UPLOAD_MAX_BYTES)
        check_headers_against_spec(headers, run_arrays(training_run))
        npz_read(data)


def _same_or_conflict(existing, sha256: str, what: str, *, data: bytes, num_examples: int | None = None):
    same_examples = num_examples is None or existing.num_examples == num_examples
    if existing.payload_id == sha256 and same_examples:
        payload_restore(existing.payload, data)
        return existing, False
    differs = "file" if existing.payload_id != sha256 else f"num_examples ({existing.num_examples})"
    raise Conflict(
        f"{what} (sha256 {existing.payload_id}); this request has a different {differs}. Uploads are never replaced."
    )


def global_weights_upload(
    *, actor: Principal, training_run: TrainingRun, round: int, data: bytes
) -> tuple[GlobalWeights, bool]:
    sha256 = hashlib.sha256(data).hexdigest()
    what = f"round {round} already has global weights"
    slot = {"training_run": training_run, "round": round}
    existing = GlobalWeights.objects.select_related("payload").filter(**slot).first()
    if existing is not None:
        return _same_or_conflict(existing, sha256, what, data=data)
    _check_parameter_arrays(training_run, data)
    with payload_staging(data, sha256=sha256) as staged:
        try:
            with transaction.atomic():
                payload = payload_store(staged)
                weights = GlobalWeights.objects.create(payload=payload, **slot)
                audit_record(actor=actor, action="global_weights.accepted", consortium=training_run.consortium,
                             target=weights,
                             data={"training_run": str(training_run.pk), "round": round, "sha256": sha256})
                _publish_and_verify(staged)
        except IntegrityError:
            # A concurrent upload filled the slot first: answer as if it had come before us.
            existing = GlobalWeights.objects.select_related("payload").filter(**slot).first()
            if existing is None:
                raise
            return _same_or_conflict(existing, sha256, what, data=data)
    return weights, True


def update_upload(
    *, actor: Principal, training_run: TrainingRun, round: int, participant: Participant, data: bytes, num_examples: int
) -> tuple[ParticipantUpdate, bool]:
    if participant.consortium_id != training_run.consortium_id:
        raise InvalidInput(f"participant {participant.slug!r} does not belong to this training run's consortium.",
                           field="participant")
    if not isinstance(num_examples, int) or isinstance(num_examples, bool) or num_examples < 1:
        raise InvalidInput("num_examples must be a positive integer.", field="num_examples")
    if num_examples > MAX_NUM_EXAMPLES:
        raise InvalidInput(f"num_examples must be at most {MAX_NUM_EXAMPLES} (10^12); got {num_examples}.",
                           field="num_examples")
    sha256 = hashlib.sha256(data).hexdigest()
    what = f"round {round} already has an update from participant {participant.slug}"
    slot = {"training_run": training_run, "round": round, "participant": participant}
    existing = ParticipantUpdate.objects.select_related("payload").filter(**slot).first()
    if existing is not None:
        return _same_or_conflict(existing, sha256, what, data=data, num_examples=num_examples)
    _check_parameter_arrays(training_run, data)
    with payload_staging(data, sha256=sha256) as staged:
        try:
            with transaction.atomic():
                payload = payload_store(staged)
                update = ParticipantUpdate.objects.create(payload=payload, num_examples=num_examples, **slot)
                audit_record(actor=actor, action="update.accepted", consortium=training_run.consortium,
                             target=update,
                             data={"training_run": str(training_run.pk), "round": round,
                                   "participant": participant.slug, "num_examples": num_examples, "sha256": sha256})
                _publish_and_verify(staged)
        except IntegrityError:
            existing = ParticipantUpdate.objects.select_related("payload").filter(**slot).first()
            if existing is None:
                raise
            return _same_or_conflict(existing, sha256, what, data=data, num_examples=num_examples)
    return update, True


def _check_validation_arrays(training_run: TrainingRun, data: bytes) -> tuple[int, int]:
    headers = npz_inspect(data, max_bytes=settings.UPLOAD_MAX_BYTES)
    if set(headers) != {"X", "y"}:
        raise InvalidInput(f"a validation set holds exactly the arrays X and y; got {names_text(headers) or 'none'}.")
    x, y = headers["X"], headers["y"]
    arrays = run_arrays(training_run)
    d = feature_count(training_run.model_family, arrays)
    if len(x.shape) != 2 or x.shape[1] != d:
        raise InvalidInput(f"array 'X': expected shape [m, {d}] (the spec has {d} features), received {list(x.shape)}.")
    if x.shape[0] < 1:
        raise InvalidInput("array 'X' has no rows.")
    if x.dtype.kind != "f":
        raise InvalidInput(f"array 'X': expected a float dtype, received {describe_dtype(x.dtype)}.")
    if y.shape != (x.shape[0],):
        raise InvalidInput(
            f"array 'y': expected shape [{x.shape[0]}] (one label per row of X), received {list(y.shape)}."
        )
    if y.dtype.kind not in "fiub":
        raise InvalidInput(f"array 'y': expected numeric labels, received dtype {describe_dtype(y.dtype)}.")
    classes = class_count(training_run.model_family, training_run.task, arrays)
    try:
        check_labels(training_run.task, npz_read(data)["y"], classes)
    except ValueError as exc:  # the engine's label rules, the same ones valuation applies
        raise InvalidInput(f"array 'y': {exc}.") from None
    return x.shape[0], d


def validation_set_upload(*, actor: Principal, training_run: TrainingRun, data: bytes) -> tuple[ValidationSet, bool]:
    """A new active version, or the active one unchanged when the same file is sent again."""
    sha256 = hashlib.sha256(data).hexdigest()
    with inputs_of("file"):
        rows, features = _check_validation_arrays(training_run, data)
    with payload_staging(data, sha256=sha256) as staged, transaction.atomic():
        # Serialises versioning per run: two uploads cannot both become version n + 1.
        TrainingRun.objects.select_for_update().filter(pk=training_run.pk).get()
        active = ValidationSet.objects.filter(training_run=training_run, is_active=True).first()
        if active is not None and active.payload_id == sha256:
            payload_publish_on_commit(staged)  # restores the file if storage lost it; else nothing
            return active, False
        payload = payload_store(staged)
        latest = training_run.validation_sets.aggregate(latest=Max("version"))["latest"] or 0
        training_run.validation_sets.filter(is_active=True).update(is_active=False)
        validation_set = ValidationSet.objects.create(
            training_run=training_run, version=latest + 1, payload=payload, rows=rows, features=features,
            created_by=actor.stored_user, created_by_key=actor.api_key,
        )
        audit_record(actor=actor, action="validation_set.accepted", consortium=training_run.consortium,
                     target=validation_set, data={"training_run": str(training_run.pk), "version": latest + 1,
                                                  "rows": rows, "sha256": sha256})
        _publish_and_verify(staged)
    return validation_set, True
