"""Input and output shapes of the coordinator's API (DESIGN.md section 7): training runs,
their uploads, and valuation runs."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from valuation.engine import METRICS, TASKS, model_family_names
from valuation.models import GlobalWeights, ParticipantUpdate, TrainingRun, ValidationSet, ValuationRun
from valuation.services.uploads import MAX_NUM_EXAMPLES
from valuation.spec import DTYPES


class ArraySpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    shape = serializers.ListField(child=serializers.IntegerField(min_value=1))
    dtype = serializers.ChoiceField(choices=DTYPES)


def _engine_vocabulary(fields: dict) -> dict:
    """Set the choices of model_family, task and metric from the engine's registry as it
    is now (at instantiation), so a family registered with register_model_family is
    accepted and listed without a change here."""
    for name, choices in (("model_family", model_family_names()), ("task", TASKS), ("metric", METRICS)):
        if name in fields:
            fields[name].choices = choices
    return fields


class TrainingRunInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    model_family = serializers.ChoiceField(choices=())  # choices: _engine_vocabulary
    task = serializers.ChoiceField(choices=())
    metric = serializers.ChoiceField(choices=())
    # Checked as a whole by valuation.spec, which names the offending array precisely.
    parameter_spec = serializers.JSONField()

    def get_fields(self):
        return _engine_vocabulary(super().get_fields())


class PayloadFields(serializers.Serializer):
    sha256 = serializers.CharField(source="payload.sha256")
    size = serializers.IntegerField(source="payload.size")
    uploaded_at = serializers.DateTimeField(source="created_at")


class GlobalWeightsOutput(PayloadFields):
    training_run = serializers.UUIDField(source="training_run_id")
    round = serializers.IntegerField()

    class Meta:
        model = GlobalWeights


class UpdateOutput(PayloadFields):
    training_run = serializers.UUIDField(source="training_run_id")
    round = serializers.IntegerField()
    participant = serializers.CharField(source="participant.slug")
    num_examples = serializers.IntegerField()

    class Meta:
        model = ParticipantUpdate


class ValidationSetOutput(PayloadFields):
    training_run = serializers.UUIDField(source="training_run_id")
    version = serializers.IntegerField()
    rows = serializers.IntegerField()
    features = serializers.IntegerField()
    is_active = serializers.BooleanField()

    class Meta:
        model = ValidationSet


class RoundUpdateOutput(PayloadFields):
    participant = serializers.CharField(source="participant.slug")
    num_examples = serializers.IntegerField()


class RoundOutput(serializers.Serializer):
    round = serializers.IntegerField()
    global_weights = PayloadFields(allow_null=True)
    updates = RoundUpdateOutput(many=True)


class TrainingRunOutput(serializers.ModelSerializer):
    consortium = serializers.CharField(source="consortium.slug")
    model_family = serializers.ChoiceField(choices=())  # the model field has no choices: the registry's
    parameter_spec = ArraySpecSerializer(many=True)

    def get_fields(self):
        return _engine_vocabulary(super().get_fields())

    class Meta:
        model = TrainingRun
        fields = ["id", "consortium", "name", "model_family", "task", "metric", "parameter_spec", "created_at"]


class TrainingRunDetailOutput(TrainingRunOutput):
    rounds = RoundOutput(many=True)
    validation_set = ValidationSetOutput(allow_null=True)

    class Meta(TrainingRunOutput.Meta):
        fields = TrainingRunOutput.Meta.fields + ["rounds", "validation_set"]


class UpdateUploadInput(serializers.Serializer):
    file = serializers.FileField(help_text=".npz with exactly the arrays of the run's parameter_spec")
    num_examples = serializers.IntegerField(
        min_value=1, max_value=MAX_NUM_EXAMPLES,
        help_text=f"training examples behind the update, from 1 to {MAX_NUM_EXAMPLES} (10^12)",
    )


class FileUploadInput(serializers.Serializer):
    file = serializers.FileField(help_text=".npz file")


# -- valuation runs ----------------------------------------------------------------------


class ValuationRunInput(serializers.Serializer):
    training_run = serializers.UUIDField()
    method = serializers.CharField(max_length=32, default="auto")  # checked by the service, against the engine
    budget = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    tolerance = serializers.FloatField(required=False, allow_null=True)
    seed = serializers.IntegerField(min_value=0, max_value=2**63 - 1, required=False, allow_null=True,
                                    help_text="Recorded; drawn at random when omitted.")
    metric = serializers.CharField(max_length=32, required=False, allow_null=True,
                                   help_text="Defaults to the training run's metric.")
    rounds = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=1_000_000), required=False,
                                   allow_null=True, allow_empty=False, max_length=100_000,
                                   help_text="Defaults to every round with global weights and updates.")


class ScoreOutput(serializers.Serializer):
    """A participant's score; a row the caller may only rank holds participant and rank."""

    participant = serializers.CharField()
    rank = serializers.IntegerField()
    value = serializers.FloatField(required=False)
    stderr = serializers.FloatField(required=False)
    ci_low = serializers.FloatField(required=False)
    ci_high = serializers.FloatField(required=False)
    share = serializers.FloatField(required=False, allow_null=True)
    per_round = serializers.DictField(child=serializers.FloatField(), required=False,
                                      help_text="Round number → value in that round (rounds the participant was in).")


class ProgressOutput(serializers.Serializer):
    done = serializers.IntegerField(help_text="Coalition evaluations done.")
    total = serializers.IntegerField(allow_null=True, help_text="Planned evaluations; null for a tolerance run.")
    chunks_done = serializers.IntegerField()
    chunks_total = serializers.IntegerField()


class ValuationRunOutput(serializers.Serializer):
    id = serializers.UUIDField()
    consortium = serializers.CharField(source="consortium.slug")
    training_run = serializers.UUIDField(source="training_run_id")
    rounds = serializers.ListField(child=serializers.IntegerField())
    method = serializers.CharField()
    budget = serializers.IntegerField(allow_null=True)
    tolerance = serializers.FloatField(allow_null=True)
    seed = serializers.IntegerField()
    metric = serializers.CharField()
    status = serializers.ChoiceField(choices=ValuationRun.Status.choices)
    progress = ProgressOutput(source="progress_view")
    input_digest = serializers.CharField()
    engine_version = serializers.CharField()
    evaluations = serializers.IntegerField(allow_null=True, help_text="Distinct coalitions evaluated.")
    error_message = serializers.CharField()
    ledger_entry = serializers.IntegerField(source="ledger_entry_seq", allow_null=True)
    details = serializers.JSONField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    scores = serializers.SerializerMethodField(help_text="Empty until the run has succeeded.")

    @extend_schema_field(ScoreOutput(many=True))
    def get_scores(self, run) -> list[dict]:
        # Rows as the selector shaped them: a rank-only row must not grow empty figures.
        return run.visible_scores
