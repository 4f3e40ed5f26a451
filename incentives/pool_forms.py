"""Forms of the revenue-pool pages: the list's filter, opening a pool, recording a payment.

The forms only shape what was typed, as the API's serializers do; the services decide
(amount on the currency's minor unit, succeeded runs, the policy) and their refusals are
shown next to the field they name. The runs and policies offered are the page's
consortium's only.
"""

from __future__ import annotations

from django import forms

from incentives.models import RevenuePool
from valuation.models import ValuationRun


class PoolFilters(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "any")] + list(RevenuePool.Status.choices))


class ValuationRunChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, run) -> str:
        finished = run.finished_at.strftime("%Y-%m-%d %H:%M") if run.finished_at else ""
        return f"{run.training_run.name} · {run.method} · seed {run.seed} · {finished} ({str(run.pk)[:8]})"


class PolicyChoice(forms.ModelChoiceField):
    def label_from_instance(self, policy) -> str:
        return (f"version {policy.version} (reserve rate {policy.reserve_rate.normalize()}, "
                f"minimum payout {policy.minimum_payout.normalize()})")


class PoolCreateForm(forms.Form):
    reference = forms.SlugField(max_length=64, help_text="Names the pool's ledger account, e.g. 2026-q1.")
    period = forms.CharField(max_length=64, help_text="E.g. 2026-Q1.")
    amount = forms.DecimalField(max_digits=19, decimal_places=4,
                                help_text="Positive, with at most the currency's decimals (cents for EUR).")
    currency = forms.CharField(max_length=3, initial="EUR", help_text="ISO 4217, e.g. EUR.")
    valuation_runs = ValuationRunChoices(queryset=None, widget=forms.CheckboxSelectMultiple,
                                         help_text="The succeeded valuation runs the split rests on.")
    policy = PolicyChoice(queryset=None, required=False, empty_label="the current policy",
                          help_text="The allocation policy version; the current one when empty.")

    def __init__(self, *args, consortium, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["valuation_runs"].queryset = (
            consortium.valuation_runs.filter(status=ValuationRun.Status.SUCCEEDED)
            .select_related("training_run").defer(*ValuationRun.HEAVY_FIELDS).order_by("-finished_at")
        )
        self.fields["policy"].queryset = consortium.allocation_policies.order_by("-version")

    def service_arguments(self) -> dict:
        """The keyword arguments of ``pool_create`` (less actor and consortium), as the API passes them."""
        data = self.cleaned_data
        return {"reference": data["reference"], "period": data["period"], "amount": data["amount"],
                "currency": data["currency"].strip().upper(), "policy": data["policy"],
                "valuation_runs": [run.pk for run in data["valuation_runs"]]}


class PaymentForm(forms.Form):
    payment_reference = forms.CharField(max_length=200, label="Payment reference",
                                        help_text="E.g. the bank transfer's batch reference.")
