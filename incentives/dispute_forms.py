"""Forms of the dispute pages. They only shape the input: the services check it and their
messages are shown next to the field (``core.forms.form_add_service_error``), so a reason or
an amount is judged by the same rule on a page as through the API."""

from __future__ import annotations

from django import forms

from core.forms import PlainSelect
from incentives.models import Dispute
from incentives.page_selectors import UNDECIDED
from valuation.services.valuation_runs import METHOD_NAMES


class DisputeFileForm(forms.Form):
    line = forms.ChoiceField(label="Line you dispute", choices=Dispute.Line.choices)
    # Not required here: an empty reason gets the service's own message.
    reason = forms.CharField(label="Why it is wrong", required=False, strip=False,
                             widget=forms.Textarea(attrs={"rows": 6}))
    attachment = forms.FileField(label="Evidence (optional)", required=False, allow_empty_file=True,
                                 help_text="A PDF, image, text, CSV, JSON, office file or ZIP.")


class ReviewForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, auto_id="review-%s", **kwargs)

    note = forms.CharField(label="Note (optional)", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def service_input(self) -> dict:
        return {"note": self.cleaned_data["note"]}


class RevaluationForm(forms.Form):
    method = forms.ChoiceField(label="Method", choices=[(m, m) for m in METHOD_NAMES], initial="exact",
                               widget=PlainSelect, help_text="exact values every coalition; an approximate method needs a budget.")
    budget = forms.IntegerField(label="Budget (utility evaluations)", required=False, min_value=1,
                                help_text="Leave empty for exact.")
    seed = forms.IntegerField(label="Seed", required=False, min_value=0, help_text="Empty: a new random seed.")
    valuation_run = forms.ChoiceField(label="Valuation run to redo", required=False, widget=PlainSelect)

    def __init__(self, *args, runs=(), **kwargs):
        super().__init__(*args, auto_id="revaluation-%s", **kwargs)
        if len(runs) > 1:  # the service asks which one only when the pool rests on several
            self.fields["valuation_run"].choices = [(str(run.pk), f"{run.training_run.name} ({run.method}, "
                                                     f"{run.created_at:%Y-%m-%d})") for run in runs]
        else:
            del self.fields["valuation_run"]

    def service_input(self) -> dict:
        data = {name: self.cleaned_data[name] for name in ("method", "budget", "seed")}
        if self.cleaned_data.get("valuation_run"):
            data["valuation_run"] = self.cleaned_data["valuation_run"]
        return data


class DecisionForm(forms.Form):
    """One of two forms on the page: uphold (with the revised amount) or reject."""

    outcome = forms.ChoiceField(choices=Dispute.Outcome.choices, widget=forms.HiddenInput)
    amount = forms.CharField(label="Revised amount", required=False, max_length=40)
    note = forms.CharField(label="Written decision", widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args, outcome: str = "", currency: str = "", **kwargs):
        super().__init__(*args, auto_id=f"{outcome}-%s", **kwargs)
        self.outcome = outcome
        self.fields["outcome"].initial = outcome
        if self.outcome != Dispute.Outcome.UPHELD:
            del self.fields["amount"]
        elif currency:
            self.fields["amount"].label = f"Revised amount ({currency})"

    def service_input(self) -> dict:
        data = {"outcome": self.cleaned_data["outcome"], "note": self.cleaned_data["note"]}
        if "amount" in self.fields:
            data["amount"] = self.cleaned_data["amount"].strip() or None
        return data


class DisputeFilters(forms.Form):
    status = forms.ChoiceField(label="Status", required=False,
                               choices=[("", "any (undecided first)"), (UNDECIDED, "undecided"),
                                        *Dispute.Status.choices])
