"""Request and response shapes of the dispute API. Amounts travel as decimal strings in the
statement's currency; scores as floats, as valuation runs report them."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from incentives.models import Dispute
from incentives.services.disputes import MAX_NOTE, MAX_REASON
from ledger.currencies import money_text
from valuation.services.valuation_runs import METHOD_NAMES


class DisputeInput(serializers.Serializer):
    line = serializers.ChoiceField(choices=Dispute.Line.choices, help_text="The statement figure you contest.")
    reason = serializers.CharField(max_length=MAX_REASON, help_text="Why the figure is wrong.")


class DisputeUploadInput(DisputeInput):
    attachment = serializers.FileField(required=False, allow_empty_file=False,
                                       help_text="Evidence (PDF, image, text, CSV, JSON, office file or ZIP); "
                                                 "at most UPLOAD_MAX_BYTES.")


class NoteInput(serializers.Serializer):
    note = serializers.CharField(max_length=MAX_NOTE, required=False, allow_blank=True, default="")


class RevaluationInput(serializers.Serializer):
    method = serializers.ChoiceField(choices=METHOD_NAMES, default="exact")
    budget = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    tolerance = serializers.FloatField(required=False, allow_null=True, default=None)
    metric = serializers.CharField(max_length=16, required=False, allow_null=True, default=None,
                                   help_text="Defaults to the training run's metric.")
    seed = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    valuation_run = serializers.UUIDField(required=False, allow_null=True, default=None,
                                          help_text="Which of the pool's runs to value again (when it has several).")


class DecisionInput(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Dispute.Outcome.choices)
    amount = serializers.DecimalField(max_digits=19, decimal_places=4, required=False, allow_null=True, default=None,
                                      help_text="Upheld: the revised statement's amount.")
    note = serializers.CharField(max_length=MAX_NOTE, required=False, allow_blank=True, default="")


class DisputeEventOutput(serializers.Serializer):
    action = serializers.CharField()
    actor = serializers.CharField(source="actor_label")
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()


class AttachmentOutput(serializers.Serializer):
    filename = serializers.CharField(source="attachment_filename")
    size = serializers.IntegerField(source="attachment_size")
    sha256 = serializers.CharField(source="attachment_sha256")
    content_type = serializers.CharField(source="attachment_content_type")


class DisputeOutput(serializers.Serializer):
    id = serializers.UUIDField()
    statement = serializers.UUIDField(source="statement_id")
    statement_version = serializers.IntegerField(source="statement.version")
    pool = serializers.UUIDField(source="statement.pool_id")
    participant = serializers.CharField(source="participant.slug")
    filed_by = serializers.CharField(source="filed_by.get_username", allow_null=True, default=None)
    line = serializers.ChoiceField(choices=Dispute.Line.choices)
    reason = serializers.CharField()
    attachment = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=Dispute.Status.choices)
    outcome = serializers.CharField(allow_blank=True, help_text="upheld, rejected, or empty until decided.")
    response_deadline = serializers.DateField()
    overdue = serializers.SerializerMethodField(help_text="Undecided after its response deadline.")
    decision_note = serializers.CharField()
    currency = serializers.CharField(source="statement.pool.currency")
    adjustment = serializers.SerializerMethodField(help_text="Revised amount minus the disputed amount.")
    revaluation = serializers.UUIDField(source="revaluation_id", allow_null=True)
    revalued_run = serializers.UUIDField(source="revalued_run_id", allow_null=True)
    revised_statement = serializers.UUIDField(source="revised_statement_id", allow_null=True)
    decided_by = serializers.CharField(source="decided_by.get_username", allow_null=True, default=None)
    decided_at = serializers.DateTimeField(allow_null=True)
    ledger_entries = serializers.SerializerMethodField(help_text="Reversal, correction and decision entry numbers.")
    created_at = serializers.DateTimeField()
    events = DisputeEventOutput(many=True, source="events.all", help_text="The trail: every action, oldest first.")

    @extend_schema_field(AttachmentOutput(allow_null=True))
    def get_attachment(self, dispute):
        return AttachmentOutput(dispute).data if dispute.attachment_name else None

    def get_overdue(self, dispute) -> bool:
        return dispute.status != Dispute.Status.DECIDED and timezone.localdate() > dispute.response_deadline

    def get_adjustment(self, dispute) -> str | None:
        if dispute.adjustment is None:
            return None
        return money_text(dispute.adjustment, dispute.statement.pool.currency)

    def get_ledger_entries(self, dispute) -> dict[str, int | None]:
        return {"reversal": dispute.reversal_entry_seq, "correction": dispute.correction_entry_seq,
                "decision": dispute.decision_entry_seq}


class ScoreFigures(serializers.Serializer):
    value = serializers.FloatField()
    stderr = serializers.FloatField()
    ci_low = serializers.FloatField()
    ci_high = serializers.FloatField()


class ComparisonRow(serializers.Serializer):
    participant = serializers.CharField()
    old = ScoreFigures(allow_null=True)
    new = ScoreFigures(allow_null=True)
    difference = serializers.FloatField(allow_null=True, help_text="new value − old value")
    outside_old_interval = serializers.BooleanField(allow_null=True,
                                                    help_text="The new value lies outside the old 95 % interval.")


class RunSummary(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    method = serializers.CharField()
    budget = serializers.IntegerField(allow_null=True)
    tolerance = serializers.FloatField(allow_null=True)
    metric = serializers.CharField()
    seed = serializers.IntegerField()


class ComparisonOutput(serializers.Serializer):
    dispute = serializers.UUIDField()
    participant = serializers.CharField(help_text="The disputing participant.")
    old_run = RunSummary(allow_null=True)
    new_run = RunSummary(allow_null=True)
    rows = ComparisonRow(many=True, help_text="Empty until the re-valuation has succeeded.")
