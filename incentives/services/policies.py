"""Allocation policy versions: the consortium's rules for turning contributions into money.

A policy is never edited. ``policy_change`` writes the next version and records it in the
ledger (a ``record`` entry, reference ``policy``), in one transaction; ``policy_current``
gives the latest version, creating version 1 with the defaults (negative contributions
count as zero, nothing else) the first time a consortium needs one.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction

from consortium.access import Principal
from consortium.audit import audit_record
from consortium.models import Consortium
from core.errors import InvalidInput
from incentives.models import AllocationPolicy
from incentives.policy import PolicyTerms, terms_problems
from ledger.services import entry_append

__all__ = ["TERM_FIELDS", "policy_change", "policy_current", "policy_terms"]

TERM_FIELDS = ("reserve_rate", "floor_share", "cap_share", "blend_alpha", "minimum_payout")


def policy_terms(policy: AllocationPolicy) -> PolicyTerms:
    return PolicyTerms(
        reserve_rate=Decimal(policy.reserve_rate), floor_share=Decimal(policy.floor_share),
        cap_share=None if policy.cap_share is None else Decimal(policy.cap_share),
        blend_alpha=Decimal(policy.blend_alpha), minimum_payout=Decimal(policy.minimum_payout),
    )


def policy_current(*, consortium: Consortium, actor: Principal) -> AllocationPolicy:
    """The consortium's latest policy version (version 1, the defaults, if it has none)."""
    latest = consortium.allocation_policies.order_by("-version").first()
    if latest is not None:
        return latest
    return _version_record(consortium=consortium, actor=actor, terms=PolicyTerms(), note="The default policy.")


def policy_change(*, actor: Principal, consortium: Consortium, note: str = "", **terms) -> AllocationPolicy:
    """Write the next policy version from ``terms`` (fields not given keep their current
    values); InvalidInput naming every term out of range, nothing written."""
    unknown = sorted(set(terms) - set(TERM_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown policy term(s): {', '.join(unknown)}.", field=unknown[0])
    with transaction.atomic():
        current = policy_terms(policy_current(consortium=consortium, actor=actor))
        merged = {name: getattr(current, name) for name in TERM_FIELDS}
        merged.update({name: _decimal(name, value) for name, value in terms.items()})
        proposed = PolicyTerms(**merged)
        problems = terms_problems(proposed)
        if problems:
            field, message = next(iter(problems.items()))
            raise InvalidInput(message, field=field, errors={name: [text] for name, text in problems.items()})
        return _version_record(consortium=consortium, actor=actor, terms=proposed, note=note)


def _decimal(name: str, value) -> Decimal | None:
    if value is None and name == "cap_share":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{name} must be a decimal number, not {value!r}.", field=name) from None
    if not number.is_finite():
        raise InvalidInput(f"{name} must be a finite number.", field=name)
    places = 4 if name == "minimum_payout" else 6
    if abs(number) >= 10**12 or number != number.quantize(Decimal(1).scaleb(-places)):
        raise InvalidInput(f"{name} has at most {places} decimals and is below 10^12.", field=name)
    return number


def _version_record(*, consortium: Consortium, actor: Principal, terms: PolicyTerms, note: str) -> AllocationPolicy:
    with transaction.atomic():
        # The consortium row serialises version numbers (two changes at once: one waits).
        Consortium.objects.select_for_update().filter(pk=consortium.pk).first()
        latest = consortium.allocation_policies.order_by("-version").values_list("version", flat=True).first()
        version = (latest or 0) + 1
        policy = AllocationPolicy.objects.create(
            consortium=consortium, version=version, note=note, created_by=actor.stored_user,
            **{name: getattr(terms, name) for name in TERM_FIELDS},
        )
        entry = entry_append(
            consortium=consortium, kind="record", actor=actor, reference_type="policy",
            reference_id=str(policy.pk), idempotency_key=f"policy:{consortium.pk}:{version}",
            body={"type": "policy", "version": str(version), "note": note,
                  "terms": {name: None if getattr(terms, name) is None else str(getattr(terms, name))
                            for name in TERM_FIELDS}},
        )
        policy.ledger_entry_seq = entry.seq
        policy.save(update_fields=["ledger_entry_seq"])
        audit_record(actor=actor, action="policy.changed", consortium=consortium, target=policy,
                     data={"version": version, "note": note})
    return policy
