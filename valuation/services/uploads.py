"""Uploads of a training run: global weights, participant updates, validation sets.

Every function is one user action: it checks the upload completely before writing
anything, then writes the payload, the row and the audit event in one transaction.
Uploads are idempotent on content: the same bytes again return the stored row
(``created=False``); different bytes for a slot already filled raise ``Conflict``.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from consortium.access import Principal
from consortium.audit import audit_record
from consortium.models import Participant
from core.errors import Conflict, InvalidInput, inputs_of
from valuation.engine import check_labels
from valuation.models import GlobalWeights, ParticipantUpdate, Payload, TrainingRun, ValidationSet
from valuation.npz import check_headers_against_spec, npz_inspect, npz_read
from valuation.services.payloads import payload_store
from valuation.spec import ArraySpec, class_count, feature_count


def run_arrays(training_run: TrainingRun) -> list[ArraySpec]:
    return [
        ArraySpec(name=a["name"], shape=tuple(a["shape"]), dtype=a["dtype"]) for a in training_run.parameter_spec
    ]


def _enqueue_verification(payload: Payload) -> None:
    from valuation.tasks import payload_verify_task  # tasks import services; avoid the cycle

    payload_verify_task.delay_on_commit(payload.sha256)


def _check_parameter_arrays(training_run: TrainingRun, data: bytes) -> None:
    with inputs_of("file"):
        headers = npz_inspect(data, max_bytes=settings.UPLOAD_MAX_BYTES)
        check_headers_against_spec(headers, run_arrays(training_run))
        npz_read(data)


def _same_or_conflict(existing, sha256: str, what: str, *, num_examples: int | None = None):
    same_examples = num_examples is None or existing.num_examples == num_examples
    if existing.payload_id == sha256 and same_examples:
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
    existing = GlobalWeights.objects.select_related("payload").filter(training_run=training_run, round=round).first()
    if existing is not None:
        return _same_or_conflict(existing, sha256, what)
    _check_parameter_arrays(training_run, data)
    try:
        with transaction.atomic():
            payload = payload_store(data, sha256=sha256)
            weights = GlobalWeights.objects.create(training_run=training_run, round=round, payload=payload)
            audit_record(actor=actor, action="global_weights.accepted", consortium=training_run.consortium,
                         target=weights, data={"training_run": str(training_run.pk), "round": round, "sha256": sha256})
            _enqueue_verification(payload)
    except IntegrityError:
        # A concurrent upload filled the slot first: answer as if it had come before us.
        existing = GlobalWeights.objects.select_related("payload").get(training_run=training_run, round=round)
        return _same_or_conflict(existing, sha256, what)
    return weights, True


def update_upload(
    *, actor: Principal, training_run: TrainingRun, round: int, participant: Participant, data: bytes, num_examples: int
) -> tuple[ParticipantUpdate, bool]:
    if participant.consortium_id != training_run.consortium_id:
        raise InvalidInput(f"participant {participant.slug!r} does not belong to this training run's consortium.",
                           field="participant")
    if not isinstance(num_examples, int) or isinstance(num_examples, bool) or num_examples < 1:
        raise InvalidInput("num_examples must be a positive integer.", field="num_examples")
    sha256 = hashlib.sha256(data).hexdigest()
    what = f"round {round} already has an update from participant {participant.slug}"
    slot = {"training_run": training_run, "round": round, "participant": participant}
    existing = ParticipantUpdate.objects.filter(**slot).first()
    if existing is not None:
        return _same_or_conflict(existing, sha256, what, num_examples=num_examples)
    _check_parameter_arrays(training_run, data)
    try:
        with transaction.atomic():
            payload = payload_store(data, sha256=sha256)
            update = ParticipantUpdate.objects.create(payload=payload, num_examples=num_examples, **slot)
            audit_record(actor=actor, action="update.accepted", consortium=training_run.consortium, target=update,
                         data={"training_run": str(training_run.pk), "round": round, "participant": participant.slug,
                               "num_examples": num_examples, "sha256": sha256})
            _enqueue_verification(payload)
    except IntegrityError:
        existing = ParticipantUpdate.objects.get(**slot)
        return _same_or_conflict(existing, sha256, what, num_examples=num_examples)
    return update, True


def _check_validation_arrays(training_run: TrainingRun, data: bytes) -> tuple[int, int]:
    headers = npz_inspect(data, max_bytes=settings.UPLOAD_MAX_BYTES)
    if set(headers) != {"X", "y"}:
        raise InvalidInput(f"a validation set holds exactly the arrays X and y; got {', '.join(headers) or 'none'}.")
    x, y = headers["X"], headers["y"]
    arrays = run_arrays(training_run)
    d = feature_count(training_run.model_family, arrays)
    if len(x.shape) != 2 or x.shape[1] != d:
        raise InvalidInput(f"array 'X': expected shape [m, {d}] (the spec has {d} features), received {list(x.shape)}.")
    if x.shape[0] < 1:
        raise InvalidInput("array 'X' has no rows.")
    if x.dtype.kind != "f":
        raise InvalidInput(f"array 'X': expected a float dtype, received {x.dtype.name}.")
    if y.shape != (x.shape[0],):
        raise InvalidInput(
            f"array 'y': expected shape [{x.shape[0]}] (one label per row of X), received {list(y.shape)}."
        )
    if y.dtype.kind not in "fiub":
        raise InvalidInput(f"array 'y': expected numeric labels, received dtype {y.dtype.name}.")
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
    with transaction.atomic():
        # Serialises versioning per run: two uploads cannot both become version n + 1.
        TrainingRun.objects.select_for_update().filter(pk=training_run.pk).get()
        active = ValidationSet.objects.filter(training_run=training_run, is_active=True).first()
        if active is not None and active.payload_id == sha256:
            return active, False
        payload = payload_store(data, sha256=sha256)
        latest = training_run.validation_sets.aggregate(latest=Max("version"))["latest"] or 0
        training_run.validation_sets.filter(is_active=True).update(is_active=False)
        validation_set = ValidationSet.objects.create(
            training_run=training_run, version=latest + 1, payload=payload, rows=rows, features=features,
            created_by=actor.stored_user, created_by_key=actor.api_key,
        )
        audit_record(actor=actor, action="validation_set.accepted", consortium=training_run.consortium,
                     target=validation_set, data={"training_run": str(training_run.pk), "version": latest + 1,
                                                  "rows": rows, "sha256": sha256})
        _enqueue_verification(payload)
    return validation_set, True
