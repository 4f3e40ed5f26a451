"""Allocation policies, revenue pools, their approvals and the statements they issue.

Money is ``Decimal`` in the pool's currency (at most its minor unit's decimals). A policy
version, an issued pool and an issued statement are never edited: a policy change is a new
version, a correction a new statement version and new ledger entries.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from consortium.models import Consortium, Participant
from valuation.models import ValuationRun

# Shares and rates: exact enough for any policy a consortium writes (six decimals).
RATE = {"max_digits": 7, "decimal_places": 6}
# Amounts: up to 10^15 in the currency, in up to four decimals (CLF and UYW have four).
MONEY = {"max_digits": 19, "decimal_places": 4}


class AllocationPolicy(models.Model):
    """One version of a consortium's allocation policy (incentives.policy.PolicyTerms)."""

    consortium = models.ForeignKey(Consortium, on_delete=models.PROTECT, related_name="allocation_policies")
    version = models.PositiveIntegerField()
    reserve_rate = models.DecimalField(**RATE, default=0, help_text="Share of a pool kept by the consortium.")
    floor_share = models.DecimalField(**RATE, default=0,
                                      help_text="Least share of the distributable amount for each contributor.")
    cap_share = models.DecimalField(**RATE, null=True, blank=True,
                                    help_text="Most share of the distributable amount for anyone; none when empty.")
    blend_alpha = models.DecimalField(**RATE, default=1,
                                      help_text="Weight of contribution against data volume (1: contribution only).")
    minimum_payout = models.DecimalField(**MONEY, default=0,
                                         help_text="Payouts below this are carried to the next period.")
    note = models.TextField(blank=True, help_text="Why the policy changed.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    ledger_entry_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consortium", "version"], name="one_policy_per_version")]
        ordering = ["consortium", "-version"]

    def __str__(self) -> str:
        return f"{self.consortium.slug} policy v{self.version}"


class RevenuePool(models.Model):
    """An amount of money to share among a consortium's participants for one period."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        DRAFTED = "drafted", "Statements drafted"
        APPROVED = "approved", "Approved"
        ISSUED = "issued", "Issued"
        PAID = "paid", "Paid"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consortium = models.ForeignKey(Consortium, on_delete=models.PROTECT, related_name="revenue_pools")
    reference = models.SlugField(max_length=64, help_text="Names the pool's ledger account, e.g. 2026-q1.")
    period = models.CharField(max_length=64)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    policy = models.ForeignKey(AllocationPolicy, on_delete=models.PROTECT, related_name="pools")
    valuation_runs = models.ManyToManyField(ValuationRun, related_name="revenue_pools")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    drafted_at = models.DateTimeField(null=True, blank=True)
    drafted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    issued_at = models.DateTimeField(null=True, blank=True)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    reserve_amount = models.DecimalField(**MONEY, null=True, blank=True)
    checkpoint_size = models.BigIntegerField(null=True, blank=True,
                                             help_text="Tree size of the checkpoint signed when the pool was issued.")
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consortium", "reference"], name="one_pool_per_reference"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="pool_amount_positive"),
        ]
        indexes = [models.Index(fields=["consortium", "-created_at"], name="revenue_pool_recent")]

    def __str__(self) -> str:
        return f"{self.reference} ({self.amount} {self.currency})"

    @property
    def is_editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.DRAFTED)


class PoolApproval(models.Model):
    """A finance user's approval of a pool's drafted statements (two different ones issue it)."""

    pool = models.ForeignKey(RevenuePool, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pool", "user"], name="one_approval_per_user")]


class Statement(models.Model):
    """What one participant gets from one pool, and why; version 2 and on revise version 1."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ISSUED = "issued", "Issued"
        SUPERSEDED = "superseded", "Superseded by a revised version"

    # JSON that only the statement's own page and documents read (at volume, 50 rounds per
    # run): lists and dispute pages leave it unread, ``.defer(*Statement.HEAVY_FIELDS)``.
    HEAVY_FIELDS = ("per_round", "methods")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pool = models.ForeignKey(RevenuePool, on_delete=models.PROTECT, related_name="statements")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="statements")
    version = models.PositiveIntegerField(default=1)
    supersedes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="superseded_by")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    amount = models.DecimalField(**MONEY, help_text="Paid now: allocated plus carried in, unless carried out.")
    allocated = models.DecimalField(**MONEY, help_text="This pool's share before carrying.")
    carried_in = models.DecimalField(**MONEY, default=0)
    carried_out = models.DecimalField(**MONEY, default=0)
    share = models.CharField(max_length=200, help_text="Exact share of the distributable amount, 'p/q'.")
    contribution = models.FloatField(help_text="Sum of the participant's values over the pool's valuation runs.")
    contribution_stderr = models.FloatField()
    ci_low = models.FloatField()
    ci_high = models.FloatField()
    methods = models.JSONField(default=list)
    per_round = models.JSONField(default=dict, help_text="Contribution per valuation run and round.")
    data_volume = models.PositiveBigIntegerField(default=0, help_text="Examples over the valued rounds.")
    ledger_entry_seq = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    issued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "participant", "version"], name="one_statement_version"),
        ]
        ordering = ["pool", "participant__slug", "version"]

    def __str__(self) -> str:
        return f"{self.pool.reference} {self.participant.slug} v{self.version}"


class Dispute(models.Model):
    """A participant's objection to one line of an issued statement, and its resolution.

    States: ``open`` → ``under_review`` → (``revaluation_ordered``) → ``decided``, with the
    outcome ``upheld`` (a revised statement and reversing/correcting entries) or ``rejected``.
    A dispute is never deleted; its ``DisputeEvent`` rows are the audit trail.
    """

    class Line(models.TextChoices):
        AMOUNT = "amount", "Amount"
        CONTRIBUTION = "contribution", "Contribution"
        SHARE = "share", "Share"
        DATA_VOLUME = "data_volume", "Data volume"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        UNDER_REVIEW = "under_review", "Under review"
        REVALUATION_ORDERED = "revaluation_ordered", "Re-valuation ordered"
        DECIDED = "decided", "Decided"

    class Outcome(models.TextChoices):
        UPHELD = "upheld", "Upheld"
        REJECTED = "rejected", "Rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    statement = models.ForeignKey(Statement, on_delete=models.PROTECT, related_name="disputes")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="disputes")
    filed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    line = models.CharField(max_length=16, choices=Line.choices)
    reason = models.TextField(max_length=5000)
    attachment_name = models.CharField(max_length=255, blank=True, help_text="Storage name; empty without one.")
    attachment_filename = models.CharField(max_length=255, blank=True, help_text="The name the filer gave it.")
    attachment_size = models.PositiveBigIntegerField(null=True, blank=True)
    attachment_sha256 = models.CharField(max_length=64, blank=True)
    attachment_content_type = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.OPEN)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    response_deadline = models.DateField(help_text="Governance answers by this date.")
    decision_note = models.TextField(blank=True)
    adjustment = models.DecimalField(**MONEY, null=True, blank=True,
                                     help_text="Revised amount minus the disputed statement's amount.")
    revalued_run = models.ForeignKey(ValuationRun, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", help_text="The pool's run that was valued again.")
    revaluation = models.ForeignKey(ValuationRun, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="disputes")
    revised_statement = models.ForeignKey(Statement, null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reversal_entry_seq = models.BigIntegerField(null=True, blank=True)
    correction_entry_seq = models.BigIntegerField(null=True, blank=True)
    decision_entry_seq = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One undecided dispute per statement line and participant (the service says so first;
            # this catches two filings racing).
            models.UniqueConstraint(fields=["statement", "participant", "line"], condition=~Q(status="decided"),
                                    name="one_open_dispute_per_line"),
            models.CheckConstraint(condition=Q(status="decided") | Q(outcome=""), name="dispute_outcome_when_decided"),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="dispute_queue")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"dispute {self.pk} ({self.line}, {self.status})"


class DisputeEvent(models.Model):
    """One action on a dispute: who, when, what (the dispute's own audit trail)."""

    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="events")
    actor_label = models.CharField(max_length=200)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    action = models.CharField(max_length=32)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dispute", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.dispute_id} {self.action} by {self.actor_label}"
