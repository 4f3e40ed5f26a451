"""Request and response shapes of the settlement API. Amounts travel as decimal strings
(never floats) with the currency's decimals; shares as exact fractions 'p/q' beside a
rounded decimal."""

from __future__ import annotations

from rest_framework import serializers

from incentives.documents import share_decimal
from incentives.models import RevenuePool, Statement
from ledger.currencies import money_text


class PolicyInput(serializers.Serializer):
    reserve_rate = serializers.DecimalField(max_digits=7, decimal_places=6, required=False,
                                            help_text="0 <= r < 1: share of a pool kept by the consortium.")
    floor_share = serializers.DecimalField(max_digits=7, decimal_places=6, required=False,
                                           help_text="0 <= f <= 1: least share for each contributor.")
    cap_share = serializers.DecimalField(max_digits=7, decimal_places=6, required=False, allow_null=True,
                                         help_text="0 < c <= 1: most share for anyone; null for no cap.")
    blend_alpha = serializers.DecimalField(max_digits=7, decimal_places=6, required=False,
                                           help_text="0 <= a <= 1: contribution against data volume (1: contribution only).")
    minimum_payout = serializers.DecimalField(max_digits=19, decimal_places=4, required=False,
                                              help_text="Payouts below this are carried to the next period.")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class PolicyOutput(serializers.Serializer):
    version = serializers.IntegerField()
    reserve_rate = serializers.DecimalField(max_digits=7, decimal_places=6)
    floor_share = serializers.DecimalField(max_digits=7, decimal_places=6)
    cap_share = serializers.DecimalField(max_digits=7, decimal_places=6, allow_null=True)
    blend_alpha = serializers.DecimalField(max_digits=7, decimal_places=6)
    minimum_payout = serializers.DecimalField(max_digits=19, decimal_places=4)
    note = serializers.CharField()
    created_at = serializers.DateTimeField()
    ledger_entry = serializers.IntegerField(source="ledger_entry_seq", allow_null=True)


class PoolInput(serializers.Serializer):
    reference = serializers.SlugField(max_length=64, help_text="Names the pool's ledger account, e.g. 2026-q1.")
    period = serializers.CharField(max_length=64)
    amount = serializers.DecimalField(max_digits=19, decimal_places=4,
                                      help_text="Positive, in the currency's minor unit at most.")
    currency = serializers.CharField(max_length=3, help_text="ISO 4217, e.g. EUR.")
    valuation_runs = serializers.ListField(child=serializers.UUIDField(), allow_empty=False, max_length=1000)
    policy_version = serializers.IntegerField(min_value=1, required=False, help_text="Defaults to the latest.")


class PoolChange(serializers.Serializer):
    period = serializers.CharField(max_length=64, required=False)
    amount = serializers.DecimalField(max_digits=19, decimal_places=4, required=False)
    currency = serializers.CharField(max_length=3, required=False)
    valuation_runs = serializers.ListField(child=serializers.UUIDField(), allow_empty=False, max_length=1000,
                                           required=False)
    policy_version = serializers.IntegerField(min_value=1, required=False)


class PaymentInput(serializers.Serializer):
    payment_reference = serializers.CharField(max_length=200, help_text="E.g. the bank transfer's batch reference.")
    references = serializers.DictField(child=serializers.CharField(max_length=200), required=False,
                                       help_text="Participant slug → its own payment reference.")


class ApprovalOutput(serializers.Serializer):
    user = serializers.CharField(source="user.get_username")
    created_at = serializers.DateTimeField()


class PoolOutput(serializers.Serializer):
    id = serializers.UUIDField()
    consortium = serializers.CharField(source="consortium.slug")
    reference = serializers.CharField()
    period = serializers.CharField()
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=RevenuePool.Status.choices)
    policy_version = serializers.IntegerField(source="policy.version")
    valuation_runs = serializers.SerializerMethodField()
    reserve_amount = serializers.SerializerMethodField(help_text="Known once the statements are drafted.")
    approvals = ApprovalOutput(many=True, source="approvals.all")
    drafted_by = serializers.CharField(source="drafted_by.get_username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    drafted_at = serializers.DateTimeField(allow_null=True)
    issued_at = serializers.DateTimeField(allow_null=True)
    checkpoint_size = serializers.IntegerField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)

    def get_amount(self, pool) -> str:
        return money_text(pool.amount, pool.currency)

    def get_reserve_amount(self, pool) -> str | None:
        return None if pool.reserve_amount is None else money_text(pool.reserve_amount, pool.currency)

    def get_valuation_runs(self, pool) -> list[str]:
        return sorted(str(run_id) for run_id in pool.valuation_runs.values_list("pk", flat=True))


class StatementOutput(serializers.Serializer):
    id = serializers.UUIDField()
    pool = serializers.UUIDField(source="pool_id")
    period = serializers.CharField(source="pool.period")
    participant = serializers.CharField(source="participant.slug")
    version = serializers.IntegerField()
    supersedes = serializers.UUIDField(source="supersedes_id", allow_null=True)
    status = serializers.ChoiceField(choices=Statement.Status.choices)
    currency = serializers.CharField(source="pool.currency")
    amount = serializers.SerializerMethodField()
    allocated = serializers.SerializerMethodField()
    carried_in = serializers.SerializerMethodField()
    carried_out = serializers.SerializerMethodField()
    share = serializers.CharField(help_text="Exact share of the distributable amount, 'p/q'.")
    share_decimal = serializers.SerializerMethodField(help_text="The share, rounded to 10 decimals.")
    contribution = serializers.FloatField()
    contribution_stderr = serializers.FloatField()
    ci_low = serializers.FloatField()
    ci_high = serializers.FloatField()
    methods = serializers.ListField(child=serializers.CharField())
    per_round = serializers.DictField(child=serializers.FloatField(),
                                      help_text="'<valuation run>:<round>' → contribution in that round.")
    data_volume = serializers.IntegerField()
    policy_version = serializers.IntegerField(source="pool.policy.version")
    ledger_entry = serializers.IntegerField(source="ledger_entry_seq", allow_null=True)
    issued_at = serializers.DateTimeField(allow_null=True)

    def get_amount(self, statement) -> str:
        return money_text(statement.amount, statement.pool.currency)

    def get_allocated(self, statement) -> str:
        return money_text(statement.allocated, statement.pool.currency)

    def get_carried_in(self, statement) -> str:
        return money_text(statement.carried_in, statement.pool.currency)

    def get_carried_out(self, statement) -> str:
        return money_text(statement.carried_out, statement.pool.currency)

    def get_share_decimal(self, statement) -> str:
        return share_decimal(statement.share)


