"""Tenancy models: who belongs to which consortium, in which role, and with which keys."""

import hashlib
import secrets
import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from core.idempotency import IdempotencyRecordBase

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
    "A slug is 1-64 lowercase letters, digits or hyphens, not starting or ending with a hyphen.",
)


class Transparency(models.TextChoices):
    """What a participant may see of the other participants' figures."""

    OWN = "own", "Own figures only"
    RANKS = "ranks", "Own figures and everyone's rank"
    ALL = "all", "All participants' figures"


class Consortium(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    transparency = models.CharField(max_length=8, choices=Transparency.choices, default=Transparency.OWN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "consortia"
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class Participant(models.Model):
    """A member organisation (a factory or fleet operator); its slug never changes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consortium = models.ForeignKey(Consortium, on_delete=models.PROTECT, related_name="participants")
    slug = models.CharField(max_length=64, validators=[slug_validator])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["consortium", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["consortium", "slug"], name="participant_slug_unique_in_consortium"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class Role(models.TextChoices):
    FINANCE = "finance", "Finance"
    GOVERNANCE = "governance", "Governance"
    AUDITOR = "auditor", "Auditor"
    PARTICIPANT = "participant", "Participant"


class Membership(models.Model):
    """A user's role in one consortium; participant users also name their organisation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    participant = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.PROTECT, related_name="memberships"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["consortium", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "consortium"], name="one_membership_per_user_and_consortium"),
            models.CheckConstraint(
                condition=(Q(role="participant", participant__isnull=False) | (~Q(role="participant") & Q(participant__isnull=True))),
                name="participant_role_names_its_participant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} in {self.consortium.slug}"


class Scope(models.TextChoices):
    """What a machine client's API key may do; see DESIGN.md section 7."""

    INGEST = "ingest", "Ingest training runs, rounds and updates"
    VALIDATION = "validation", "Upload validation sets"
    VALUATION = "valuation", "Start valuation runs and read their results"
    READ = "read", "Read what the consortium's finance staff may read"


API_KEY_PREFIX = "fsk"


def hash_api_key(key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast unsalted hash is enough to make a
    # stolen table useless; a slow password hash would only slow every API call.
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    """A machine client's credential: ``fsk_<lookup id>_<secret>``, stored only as a hash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    lookup_id = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["consortium", "-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def prefix(self) -> str:
        """The non-secret part shown in lists so that people can tell keys apart."""
        return f"{API_KEY_PREFIX}_{self.lookup_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def generate() -> tuple[str, str]:
        """A fresh (lookup id, full key) pair; the full key is shown once and never stored."""
        lookup_id = secrets.token_hex(6)
        return lookup_id, f"{API_KEY_PREFIX}_{lookup_id}_{secrets.token_urlsafe(32)}"


class AuditEvent(models.Model):
    """Who did what, when: one row per change made by a user or an API key."""

    consortium = models.ForeignKey(
        Consortium, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=200, help_text="Who acted, kept even if the user or key is gone.")
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"


class IdempotencyRecord(IdempotencyRecordBase):
    """An ``Idempotency-Key`` answer; keys are unique within a consortium (see core.idempotency)."""

    scope_field = "consortium"

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consortium", "key"], name="idempotency_key_unique_in_consortium"),
        ]
