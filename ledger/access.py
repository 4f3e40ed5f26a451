"""Access helpers for the ledger: who may read which entries, built on consortium.access.

A consortium's ledger is read by callers in the consortium who may read it (else 404 outside,
403 inside). Staff, auditors and ``read`` keys see every entry of the consortium; a
participant user sees only the entries that concern its own organisation, and 404 for the
others. The deployment-wide views (checkpoints, consistency proofs) need a caller who may
read the ledger of some consortium.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortium.access import Capability, Principal, consortium_get, require
from consortium.models import Consortium, Participant
from core.errors import InvalidInput, NotAllowed, NotFound
from ledger import selectors
from ledger.models import LedgerEntry


@dataclass(frozen=True)
class LedgerScope:
    """What one caller may read of one consortium's ledger; ``viewer`` limits it to the
    entries that concern that participant (None: every entry of the consortium)."""

    consortium: Consortium
    viewer: Participant | None


def ledger_scope_get(principal: Principal, slug: str) -> LedgerScope:
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW_LEDGER)
    if principal.can(consortium, Capability.VIEW_ALL):
        return LedgerScope(consortium, None)
    viewer = principal.own_participant(consortium)
    if viewer is None:
        raise NotAllowed("Your role does not allow reading the ledger.")
    return LedgerScope(consortium, viewer)


def ledger_entry_get(scope: LedgerScope, seq: int) -> LedgerEntry:
    entry = selectors.entry_get(consortium=scope.consortium, seq=seq, viewer=scope.viewer)
    if entry is None:
        raise NotFound("No such ledger entry.")
    return entry


def ledger_participant_get(scope: LedgerScope, slug: str) -> Participant:
    """A participant to filter entries by: one of the consortium's, and the viewer itself for
    a participant user (a query parameter, so an unknown one is a 400, not a 404)."""
    participants = scope.consortium.participants.all()
    if scope.viewer is not None:
        participants = participants.filter(pk=scope.viewer.pk)
    participant = participants.filter(slug=slug).first()
    if participant is None:
        raise InvalidInput(f"No participant {slug!r} that you may see in this consortium.", field="participant")
    return participant


def ledger_reader_require(principal: Principal) -> None:
    """403 unless the caller may read the ledger of at least one consortium."""
    if not any(principal.can(c, Capability.VIEW_LEDGER) for c in principal.consortia()):
        raise NotAllowed("Only callers who may read a consortium's ledger may read checkpoints.")
