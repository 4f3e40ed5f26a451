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
