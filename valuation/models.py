"""Training runs and what the coordinator and governance upload for them.

Payload bytes live in Django's storage under their SHA-256 (content-addressed, so the same
array file is stored once); the database holds the metadata and the hash.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from consortium.models import ApiKey, Consortium, Participant
from valuation.engine import METRICS, TASKS


def _choices(values):
    return [(value, value) for value in values]


class Payload(models.Model):
    """One stored file, named by the SHA-256 of its bytes."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveBigIntegerField()
    storage_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    # Filled by the integrity task: the stored bytes still hash to ``sha256``.
    verified_at = models.DateTimeField(null=True, blank=True)
    array_norms = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.sha256


class TrainingRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consortium = models.ForeignKey(Consortium, on_delete=models.PROTECT, related_name="training_runs")
    name = models.CharField(max_length=200)
    # No choices: families come from the engine's registry, which a deployment may extend.
    model_family = models.CharField(max_length=64)
    task = models.CharField(max_length=16, choices=_choices(TASKS))
    metric = models.CharField(max_length=16, choices=_choices(METRICS))
    parameter_spec = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["consortium", "name"], name="training_run_name_unique_in_consortium"),
        ]

    def __str__(self) -> str:
        return self.name


class GlobalWeights(models.Model):
    """The global model ``w_t`` that round t starts from."""

    training_run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="global_weights")
    round = models.PositiveIntegerField()
    payload = models.ForeignKey(Payload, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["training_run", "round"]
        constraints = [
            models.UniqueConstraint(fields=["training_run", "round"], name="one_global_weights_per_round"),
        ]
        verbose_name_plural = "global weights"


class ParticipantUpdate(models.Model):
    """Participant i's update ``Δ_i^t`` for round t and the number of examples behind it."""

    training_run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="updates")
    round = models.PositiveIntegerField()
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="updates")
    payload = models.ForeignKey(Payload, on_delete=models.PROTECT, related_name="+")
    num_examples = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["training_run", "round", "participant__slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["training_run", "round", "participant"], name="one_update_per_participant_and_round"
            ),
            models.CheckConstraint(condition=Q(num_examples__gt=0), name="update_num_examples_positive"),
        ]


class ValidationSet(models.Model):
    """The governance body's held-out data; a new upload is a new version and the active one."""

    training_run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="validation_sets")
    version = models.PositiveIntegerField()
    payload = models.ForeignKey(Payload, on_delete=models.PROTECT, related_name="+")
    rows = models.PositiveIntegerField()
    features = models.PositiveIntegerField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["training_run", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["training_run", "version"], name="validation_set_version_unique"),
            models.UniqueConstraint(
                fields=["training_run"], condition=Q(is_active=True), name="one_active_validation_set_per_run"
            ),
        ]


class ValuationRun(models.Model):
    """One valuation of a training run's rounds: what was asked, how far it is, what it found.

    The request (method, budget or tolerance, seed, metric, rounds) and the ``input_digest``
    of everything the numbers depend on are fixed at creation; the workers fill in the rest.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # Large JSON (every update of every round; per-round plans) that lists and pages leave
    # unread: ``.defer(*ValuationRun.HEAVY_FIELDS)``.
    HEAVY_FIELDS = ("inputs", "details")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consortium = models.ForeignKey(Consortium, on_delete=models.PROTECT, related_name="valuation_runs")
    training_run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="valuation_runs")
    rounds = models.JSONField(help_text="The rounds valued, ascending.")
    method = models.CharField(max_length=32)
    budget = models.PositiveBigIntegerField(null=True, blank=True)
    tolerance = models.FloatField(null=True, blank=True)
    seed = models.PositiveBigIntegerField()
    metric = models.CharField(max_length=16, choices=_choices(METRICS))
    validation_set = models.ForeignKey(ValidationSet, on_delete=models.PROTECT, related_name="+")
    chunk_budget = models.PositiveIntegerField(help_text="Coalitions per chunk of sampling work (affects the numbers).")
    input_digest = models.CharField(max_length=64)
    engine_version = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(default=0)
    evaluations = models.PositiveBigIntegerField(null=True, blank=True, help_text="Distinct coalitions evaluated.")
    error_message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="Per-round methods, budgets and evaluations.")
    inputs = models.JSONField(
        default=list, blank=True,
        help_text="The rounds' inputs the digest covers (global weights, updates by participant), as requested: "
                  "what the workers value.",
    )
    ledger_entry_seq = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["consortium", "-created_at"], name="valuation_run_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(tolerance__isnull=True), name="valuation_run_budget_or_tolerance"
            ),
        ]

    def __str__(self) -> str:
        return f"valuation {self.id} of {self.training_run_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED)


class ValuationChunk(models.Model):
    """One task's share of a valuation run: a slice of one round's coalitions (exact) or an
    independent estimate with its own budget and seed (sampling methods)."""

    class Kind(models.TextChoices):
        ENUMERATE = "enumerate", "Enumerate a range of coalitions"
        ESTIMATE = "estimate", "Independent estimate"

    valuation_run = models.ForeignKey(ValuationRun, on_delete=models.CASCADE, related_name="chunks")
    round = models.PositiveIntegerField()
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    method = models.CharField(max_length=32)
    budget = models.PositiveBigIntegerField(null=True, blank=True)
    first_key = models.PositiveBigIntegerField(null=True, blank=True)
    last_key = models.PositiveBigIntegerField(null=True, blank=True, help_text="Exclusive.")
    seed = models.PositiveBigIntegerField()
    done = models.BooleanField(default=False)
    values = models.JSONField(null=True, blank=True)
    stderr = models.JSONField(null=True, blank=True)
    evaluations = models.PositiveBigIntegerField(default=0)
    result_method = models.CharField(max_length=32, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["valuation_run", "round", "index"]
        constraints = [
            models.UniqueConstraint(fields=["valuation_run", "round", "index"], name="one_chunk_per_index"),
        ]

    @property
    def task_id(self) -> str:
        """The Celery task id: fixed, so that a cancel can revoke it without storing it."""
        return f"valuation-chunk-{self.pk}"


class CoalitionUtility(models.Model):
    """A utility computed for a run's round: the engine's coalition cache, in the database,
    so that a re-delivered task reuses what a lost worker had already computed."""

    id = models.BigAutoField(primary_key=True)
    # The unique constraint's index leads with the run: a second index on it alone would
    # only slow the inserts, a row per coalition evaluated.
    valuation_run = models.ForeignKey(ValuationRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    round = models.PositiveIntegerField()
    coalition = models.TextField(help_text="The bitmask key in hexadecimal (n/4 characters for n players).")
    utility = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["valuation_run", "round", "coalition"], name="one_utility_per_coalition"),
        ]


class UtilityBlock(models.Model):
    """Exact enumeration's store: the utilities of consecutive coalition keys of a run's round,
    from ``first_key`` on, as little-endian float64 bytes; one row per batch a chunk computes
    (instead of one :class:`CoalitionUtility` row per coalition), so a re-delivered chunk skips
    the batches its lost worker had stored."""

    id = models.BigAutoField(primary_key=True)
    valuation_run = models.ForeignKey(ValuationRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    round = models.PositiveIntegerField()
    first_key = models.PositiveBigIntegerField()
    utilities = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["valuation_run", "round", "first_key"], name="one_block_per_first_key"),
        ]


class ParticipantScore(models.Model):
    """A participant's contribution in a succeeded valuation run."""

    valuation_run = models.ForeignKey(ValuationRun, on_delete=models.CASCADE, related_name="scores")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="scores")
    value = models.FloatField()
    stderr = models.FloatField()
    ci_low = models.FloatField()
    ci_high = models.FloatField()
    share = models.FloatField(null=True, blank=True, help_text="value / total; null when the total is not positive.")
    rank = models.PositiveIntegerField(help_text="1 for the largest value; ties share the smaller rank.")
    per_round = models.JSONField(help_text="Round number (as text) → value in that round.")

    class Meta:
        ordering = ["valuation_run", "rank", "participant__slug"]
        constraints = [
            models.UniqueConstraint(fields=["valuation_run", "participant"], name="one_score_per_participant"),
        ]
