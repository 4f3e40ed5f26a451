"""The ledger page's filters: what an auditor narrows the entries down by, kept in the URL.

Every field is optional; an invalid value is shown next to its field and that filter is left
out (``core.listing.filter_form``). The participant filter exists for staff only: a
participant user already sees only the entries that concern its own organisation.
"""

from __future__ import annotations

import datetime as dt
import re

from django import forms

from ledger.models import MAX_LEDGER_SIZE, EntryKind, ReferenceType

ACCOUNT_PREFIX = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class LedgerFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "Any kind"), *EntryKind.choices], required=False)
    reference_type = forms.ChoiceField(choices=[("", "Any reference"), *ReferenceType.choices], required=False,
                                       label="Reference type")
    reference_id = forms.CharField(max_length=64, required=False, label="Reference id")
    account = forms.CharField(max_length=100, required=False, label="Account starts with",
                              widget=forms.TextInput(attrs={"placeholder": "revenue_pool, participant_payable:…"}))
    participant = forms.CharField(max_length=64, required=False, label="Participant",
                                  widget=forms.TextInput(attrs={"list": "ledger-participants", "placeholder": "slug"}))
    seq_from = forms.IntegerField(min_value=0, max_value=MAX_LEDGER_SIZE, required=False, label="From entry no.")
    seq_to = forms.IntegerField(min_value=0, max_value=MAX_LEDGER_SIZE, required=False, label="To entry no.")
    date_from = forms.DateField(required=False, label="From date (UTC)",
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To date (UTC)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, participants=None, **kwargs):
        """``participants``: the consortium's participants a staff member may filter by;
        None drops the field (participant users). A text field with a list of slugs to pick
        from, rather than a select: a consortium may have hundreds of participants."""
        super().__init__(*args, **kwargs)
        self.participants = participants
        if participants is None:
            del self.fields["participant"]

    def clean_participant(self):
        slug = self.cleaned_data["participant"].strip()
        if not slug:
            return None
        participant = self.participants.filter(slug=slug).first()
        if participant is None:
            raise forms.ValidationError(f"No participant {slug!r} in this consortium.")
        return participant

    def clean_account(self) -> str:
        account = self.cleaned_data["account"].strip()
        if account and not ACCOUNT_PREFIX.match(account):
            raise forms.ValidationError("An account name holds only letters, digits, '.', '_', '-' and ':'.")
        return account

    def clean_reference_id(self) -> str:
        return self.cleaned_data["reference_id"].strip()

    def clean(self):
        data = super().clean()
        if data.get("reference_id") and not data.get("reference_type") and "reference_type" not in self.errors:
            # Ids are only unique within their type (and the index that keeps this fast starts with the type).
            self.add_error("reference_type", "Choose the reference type of that id.")
            data.pop("reference_id", None)
        self._order("seq_from", "seq_to", "The last entry number is below the first.")
        self._order("date_from", "date_to", "The end date is before the start date.")
        return data

    def _order(self, low: str, high: str, message: str) -> None:
        data = self.cleaned_data
        if data.get(low) is not None and data.get(high) is not None and data[high] < data[low]:
            self.add_error(high, message)


def date_bounds(values: dict) -> dict:
    """``date_from``/``date_to`` (whole UTC days, both included) as the selector's
    ``since``/``until`` (``until`` excluded)."""
    bounds = {}
    if values.get("date_from"):
        bounds["since"] = dt.datetime.combine(values["date_from"], dt.time(), tzinfo=dt.UTC)
    if values.get("date_to") and values["date_to"] < dt.date.max:  # the last day of year 9999 bounds nothing
        bounds["until"] = dt.datetime.combine(values["date_to"] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return bounds
