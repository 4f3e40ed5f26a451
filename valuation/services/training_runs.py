"""Registering a training run: the coordinator declares its model family and arrays."""

from __future__ import annotations

from django.db import transaction

from consortium.access import Principal
from consortium.audit import audit_record
from consortium.models import Consortium
from core.errors import Conflict, InvalidInput
from valuation.models import TrainingRun
from valuation.spec import parse_training_spec


@transaction.atomic
def training_run_create(
    *, actor: Principal, consortium: Consortium, name: str, model_family: str, task: str, metric: str, parameter_spec
) -> TrainingRun:
    arrays = parse_training_spec(model_family=model_family, task=task, metric=metric, parameter_spec=parameter_spec)
    longest = TrainingRun._meta.get_field("model_family").max_length
    if len(model_family) > longest:  # a plug-in family registered under a name the column cannot hold
        raise InvalidInput(f"model_family {model_family!r} is longer than {longest} characters; register it "
                           "under a shorter name.")
    if TrainingRun.objects.filter(consortium=consortium, name=name).exists():
        raise Conflict(f"A training run named {name!r} already exists in {consortium.slug}.")
    run = TrainingRun.objects.create(
        consortium=consortium,
        name=name,
        model_family=model_family,
        task=task,
        metric=metric,
        parameter_spec=[array.as_json() for array in arrays],
        created_by_key=actor.api_key,
    )
    audit_record(actor=actor, action="training_run.created", consortium=consortium, target=run,
                 data={"name": name, "model_family": model_family, "task": task, "metric": metric})
    return run
