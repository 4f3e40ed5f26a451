"""Forms of the valuation pages: the valuation-run filters and the start form.

The start form only shapes what was typed; ``valuation.services.valuation_run_start``
decides (method, budget or tolerance, metric, rounds) and its refusals are shown next to
the field they name. The training runs offered are the page's consortium's only.
"""

from __future__ import annotations

from django import forms

from core.forms import PlainSelect
from valuation.engine import METRICS
from valuation.models import ValuationRun
from valuation.services.valuation_runs import MAX_SEED, METHOD_NAMES


def _choices(values, blank: str | None = None) -> list[tuple[str, str]]:
    return ([("", blank)] if blank is not None else []) + [(value, value) for value in values]


class TrainingRunChoice(forms.ModelChoiceField):
    widget = PlainSelect

    def label_from_instance(self, run) -> str:
        return f"{run.name} ({run.model_family}, {run.metric})"


class ValuationRunFilters(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "any")] + list(ValuationRun.Status.choices),
                               widget=PlainSelect)
    training_run = TrainingRunChoice(required=False, queryset=None, empty_label="any")
    method = forms.ChoiceField(required=False, choices=_choices(METHOD_NAMES, "any"), widget=PlainSelect)

    def __init__(self, *args, consortium, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["training_run"].queryset = consortium.training_runs.order_by("name")


class ValuationStartForm(forms.Form):
    training_run = TrainingRunChoice(queryset=None, empty_label=None)
    method = forms.ChoiceField(choices=_choices(METHOD_NAMES), initial="auto", widget=PlainSelect,
                               help_text="auto: exact where it is cheap, the best approximation otherwise.")
    budget = forms.IntegerField(required=False, min_value=1,
                                help_text="Coalition evaluations in all; or give a tolerance; neither for exact.")
    tolerance = forms.FloatField(required=False, help_text="Target relative standard error, between 0 and 1.")
    seed = forms.IntegerField(required=False, min_value=0, max_value=MAX_SEED,
                              help_text="Recorded with the results; drawn at random when empty.")
    metric = forms.ChoiceField(required=False, choices=_choices(METRICS, "the training run's"), widget=PlainSelect)
    rounds = forms.CharField(required=False, max_length=2000,
                             help_text="Round numbers separated by commas; empty for every complete round.")

    def __init__(self, *args, consortium, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["training_run"].queryset = consortium.training_runs.order_by("-created_at")

    def clean_rounds(self) -> list[int] | None:
        text = self.cleaned_data["rounds"].strip()
        if not text:
            return None
        rounds = []
        for part in text.replace(";", ",").split(","):
            part = part.strip()
            if not (part.isascii() and part.isdigit()) or int(part) > 1_000_000:
                raise forms.ValidationError(f"{part!r} is not a round number (0 to 1000000).")
            rounds.append(int(part))
        return rounds

    def service_arguments(self) -> dict:
        """The keyword arguments of ``valuation_run_start`` (less the actor), as the API passes them."""
        data = self.cleaned_data
        return {"training_run": data["training_run"], "method": data["method"], "budget": data["budget"],
                "tolerance": data["tolerance"], "seed": data["seed"], "metric": data["metric"] or None,
                "rounds": data["rounds"]}
