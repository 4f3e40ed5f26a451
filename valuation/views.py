"""Pages of the valuation app: a training run and who has uploaded what."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from consortium.access import consortium_get, principal_for
from core.errors import NotFound
from valuation.access import training_run_get
from valuation.selectors import training_run_rounds, validation_set_active


@login_required
def training_run_page(request, slug, run_id):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    run = training_run_get(principal, run_id)
    if run.consortium_id != consortium.id:
        raise NotFound("No such training run.")
    context = {
        "consortium": consortium,
        "run": run,
        "rounds": training_run_rounds(principal=principal, training_run=run),
        "validation_set": validation_set_active(training_run=run),
    }
    return render(request, "valuation/training_run.html", context)


def training_runs_page(request, slug):
    raise NotFound("placeholder")  # being built (issue #13)


def valuation_runs_page(request, slug):
    raise NotFound("placeholder")


def valuation_run_page(request, slug, valuation_run_id):
    raise NotFound("placeholder")


def valuation_run_progress_part(request, slug, valuation_run_id):
    raise NotFound("placeholder")
