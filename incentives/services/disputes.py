"""Disputes: a participant contests a line of an issued statement; governance reviews it,
may order a re-valuation with stricter settings, and decides.

Each function is one user action in one transaction. It locks the dispute's row first,
then (where entries are posted) the pool's and the disputed statement's rows, and the
ledger head last, by appending (docs/ledger.md). Every action writes a ``DisputeEvent``
(the dispute's own trail) and an audit event, and e-mails the disputing participant's users
once the transaction has committed (never for an action that rolled back).

An upheld decision, in the same transaction: the exact negation of version 1's entry
(reversal), version 2's entry (correction; the difference against version 1 is funded from
or returned to the ``reserve`` account, so every entry balances and the pool's account
stays as issuing left it), version 2 itself (``issued``, ``supersedes`` version 1, which
becomes ``superseded`` and stays readable), and the decision record. A rejection writes only
the record. Entries name only the disputing participant.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import uuid
from datetime import timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from consortium.access import Principal
from consortium.audit import audit_record
from consortium.models import Membership, Role
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound, TooLarge
from incentives.models import Dispute, DisputeEvent, Statement
from incentives.services.dispute_entries import post_decision, uphold
from incentives.services.money import amount_checked
from incentives.services.pools import pool_locked
from ledger.services import checkpoint_create
from valuation.models import ValuationRun
from valuation.services import valuation_run_start

__all__ = ["ATTACHMENT_TYPES", "MAX_REASON", "dispute_decide", "dispute_file", "dispute_revaluation_order",
           "dispute_review"]

logger = logging.getLogger(__name__)

MAX_REASON = 5000
MAX_NOTE = 5000
# Loose on purpose (evidence comes as documents, images, tables, text): anything a browser
# would render as a page or run is refused, and downloads are always served as attachments.
ATTACHMENT_TYPES = {
    "application/pdf", "image/png", "image/jpeg", "image/gif", "text/plain", "text/csv", "application/json",
    "application/zip", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/vnd.ms-excel",
    "application/msword", "application/octet-stream",
}
_S = Dispute.Status


# -- filing ---------------------------------------------------------------------------------


def dispute_file(*, actor: Principal, statement: Statement, line: str, reason: str,
                 attachment: bytes | None = None, attachment_filename: str = "",
                 attachment_content_type: str = "") -> Dispute:
    """File a dispute against a line of the caller's own organisation's issued statement.

    Refused: a caller that is not a participant user (403), another participant's statement
    (404), a draft or superseded statement (409), a second undecided dispute on the same
    line (409), a bad line or reason (400), an attachment over ``UPLOAD_MAX_BYTES`` (413) or
    of a type that is not a document (400). Nothing is written when refused.
    """
    consortium = statement.pool.consortium
    own = actor.own_participant(consortium) if actor.stored_user is not None else None
    if own is None:
        raise NotAllowed("Disputes are filed by a participant's staff, signed in as themselves.")
    if statement.participant_id != own.pk:
        raise NotFound("No such statement.")
    _check_line_and_reason(line, reason)
    content_type = _check_attachment(attachment, attachment_filename, attachment_content_type)
    dispute_id = uuid.uuid4()
    stored = _attachment_store(dispute_id, attachment) if attachment is not None else ""
    try:
        with transaction.atomic():
            statement = (Statement.objects.select_for_update(of=("self",))
                         .select_related("pool__consortium", "participant").get(pk=statement.pk))
            _check_disputable(statement)
            if Dispute.objects.filter(statement=statement, participant=own, line=line).exclude(
                    status=_S.DECIDED).exists():
                raise Conflict(f"You already have an undecided dispute on this statement's {line}.")
            dispute = _dispute_create(dispute_id, actor, statement, line, reason, stored, attachment,
                                      attachment_filename, content_type)
            _event(actor, dispute, "filed", {"line": line, "statement": str(statement.pk),
                                             "statement_version": statement.version,
                                             "attachment_sha256": dispute.attachment_sha256 or None,
                                             "response_deadline": dispute.response_deadline.isoformat()})
    except BaseException:
        if stored:  # the row never committed: its file must not outlive it
            default_storage.delete(stored)
        raise
    return dispute


def _check_line_and_reason(line: str, reason: str) -> None:
    if line not in Dispute.Line.values:
        raise InvalidInput(f"line must be one of {', '.join(Dispute.Line.values)}.", field="line")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Say why you dispute this line.", field="reason")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"reason has at most {MAX_REASON} characters; this one has {len(reason)}.", field="reason")


def _check_attachment(data: bytes | None, filename: str, content_type: str) -> str:
    if data is None:
        return ""
    if len(data) > settings.UPLOAD_MAX_BYTES:
        raise TooLarge(f"the attachment is {len(data)} bytes; the limit is {settings.UPLOAD_MAX_BYTES} bytes.")
    if not data:
        raise InvalidInput("The attachment is empty.", field="attachment")
    declared = (content_type or "").split(";")[0].strip().lower()
    guessed = mimetypes.guess_type(filename or "")[0] or ""
    chosen = declared if declared in ATTACHMENT_TYPES and declared != "application/octet-stream" else guessed
    if chosen not in ATTACHMENT_TYPES:
        chosen = declared if declared in ATTACHMENT_TYPES else ""
    if not chosen:
        raise InvalidInput("Attach a document (PDF, image, text, CSV, JSON, office file or ZIP), not "
                           f"{declared or guessed or 'an unknown type'}.", field="attachment")
    return chosen


def _attachment_store(dispute_id, data: bytes) -> str:
    """Written before the transaction (storage is not transactional) under a name no one
    else uses; the caller deletes it if the transaction does not commit."""
    sha256 = hashlib.sha256(data).hexdigest()
    return default_storage.save(f"disputes/{dispute_id}/{sha256}", ContentFile(data))


def _check_disputable(statement: Statement) -> None:
    if statement.status == Statement.Status.DRAFT:
        raise Conflict("This statement is not issued yet: only an issued statement can be disputed.")
    if statement.status == Statement.Status.SUPERSEDED:
        raise Conflict(f"Version {statement.version} of this statement has been revised; dispute the current version.")


def _dispute_create(dispute_id, actor, statement, line, reason, stored, data, filename, content_type) -> Dispute:
    deadline = timezone.localdate() + timedelta(days=settings.DISPUTE_RESPONSE_DAYS)
    try:
        with transaction.atomic():
            return Dispute.objects.create(
                id=dispute_id, statement=statement, participant=statement.participant, filed_by=actor.stored_user,
                line=line, reason=reason, response_deadline=deadline, attachment_name=stored,
                attachment_filename=(filename or "")[:255], attachment_size=None if data is None else len(data),
                attachment_sha256="" if data is None else hashlib.sha256(data).hexdigest(),
                attachment_content_type=content_type,
            )
    except IntegrityError:  # a concurrent filing of the same line won the race
        raise Conflict(f"You already have an undecided dispute on this statement's {line}.") from None


# -- governance's steps -----------------------------------------------------------------------


def dispute_review(*, actor: Principal, dispute: Dispute, note: str = "") -> Dispute:
    """Governance takes an open dispute under review (409 unless it is open)."""
    _check_person(actor)
    _check_note(note)
    with transaction.atomic():
        dispute = _locked(dispute)
        if dispute.status != _S.OPEN:
            raise Conflict(f"The dispute is {dispute.get_status_display().lower()}: only an open one is taken "
                           "under review.")
        dispute.status = _S.UNDER_REVIEW
        dispute.save(update_fields=["status"])
        _event(actor, dispute, "reviewed", {"note": note})
    return dispute


def dispute_revaluation_order(*, actor: Principal, dispute: Dispute, method: str = "exact", budget: int | None = None,
                              tolerance: float | None = None, metric: str | None = None, seed: int | None = None,
                              valuation_run=None) -> Dispute:
    """Value the training run behind the statement again with governance's stricter settings.

    ``valuation_run`` picks which of the pool's runs to redo (needed only when the pool rests
    on several); the new run values the same rounds. Allowed while under review, or again
    after an ordered re-valuation failed or was cancelled; refused (409) otherwise.
    """
    _check_person(actor)
    with transaction.atomic():
        dispute = _locked(dispute)
        _check_may_order(dispute)
        old = _run_to_redo(dispute, valuation_run)
        new = valuation_run_start(actor=actor, training_run=old.training_run, method=method, budget=budget,
                                  tolerance=tolerance, seed=seed, metric=metric, rounds=list(old.rounds))
        dispute.status, dispute.revalued_run, dispute.revaluation = _S.REVALUATION_ORDERED, old, new
        dispute.save(update_fields=["status", "revalued_run", "revaluation"])
        _event(actor, dispute, "revaluation_ordered",
               {"valuation_run": str(new.pk), "replaces": str(old.pk), "method": method, "budget": budget,
                "tolerance": tolerance, "metric": new.metric, "seed": new.seed})
    return dispute


def _check_may_order(dispute: Dispute) -> None:
    retry = dispute.status == _S.REVALUATION_ORDERED and dispute.revaluation.status in (
        ValuationRun.Status.FAILED, ValuationRun.Status.CANCELLED)
    if dispute.status != _S.UNDER_REVIEW and not retry:
        raise Conflict(f"The dispute is {dispute.get_status_display().lower()}: a re-valuation is ordered while it "
                       "is under review (or again after an ordered one failed).")


def _run_to_redo(dispute: Dispute, wanted) -> ValuationRun:
    runs = list(dispute.statement.pool.valuation_runs.select_related("training_run").order_by("created_at"))
    if wanted is not None:
        chosen = [run for run in runs if str(run.pk) == str(wanted)]
        if not chosen:
            raise InvalidInput("The statement's pool does not rest on that valuation run.", field="valuation_run")
        return chosen[0]
    if len(runs) != 1:
        raise InvalidInput(f"The pool rests on {len(runs)} valuation runs: name the one to value again.",
                           field="valuation_run")
    return runs[0]


def dispute_decide(*, actor: Principal, dispute: Dispute, outcome: str, amount=None, note: str = "") -> Dispute:
    """Decide a reviewed dispute: ``upheld`` with the revised statement's ``amount``, or
    ``rejected`` (no amount). A second decision, an unreviewed dispute, a re-valuation still
    running, or a statement already revised are 409; a bad amount is 400 on ``amount``."""
    _check_person(actor)
    _check_note(note)
    if outcome not in Dispute.Outcome.values:
        raise InvalidInput(f"outcome must be one of {', '.join(Dispute.Outcome.values)}.", field="outcome")
    if outcome == Dispute.Outcome.REJECTED and amount is not None:
        raise InvalidInput("A rejection changes no amount: leave amount out.", field="amount")
    with transaction.atomic():
        dispute = _locked(dispute)
        _check_decidable(dispute)
        pool = pool_locked(dispute.statement.pool)
        if outcome == Dispute.Outcome.UPHELD:
            uphold(actor, dispute, pool, _revised_amount(amount, pool.currency))
        dispute.status, dispute.outcome, dispute.decision_note = _S.DECIDED, outcome, note
        dispute.decided_by, dispute.decided_at = actor.stored_user, timezone.now()
        dispute.decision_entry_seq = post_decision(actor, dispute, pool).seq
        if outcome == Dispute.Outcome.UPHELD:
            checkpoint_create()  # so that the revised statement can carry its inclusion proof
        dispute.save()
        _event(actor, dispute, "decided", {
            "outcome": outcome, "note": note,
            "adjustment": None if dispute.adjustment is None else f"{dispute.adjustment:f}",
            "revised_statement": None if dispute.revised_statement_id is None else str(dispute.revised_statement_id),
            "ledger_entries": [seq for seq in (dispute.reversal_entry_seq, dispute.correction_entry_seq,
                                               dispute.decision_entry_seq) if seq is not None]})
    return dispute


def _check_decidable(dispute: Dispute) -> None:
    if dispute.status == _S.DECIDED:
        raise Conflict(f"The dispute was already decided ({dispute.outcome}) on {dispute.decided_at:%Y-%m-%d}.")
    if dispute.status == _S.OPEN:
        raise Conflict("Take the dispute under review before deciding it.")
    running = (ValuationRun.Status.QUEUED, ValuationRun.Status.RUNNING)
    if dispute.status == _S.REVALUATION_ORDERED and dispute.revaluation.status in running:
        raise Conflict("The ordered re-valuation has not finished: decide once it has (or it failed).")


def _revised_amount(amount, currency: str) -> Decimal:
    if amount is None:
        raise InvalidInput("An upheld dispute names the revised statement's amount.", field="amount")
    return amount_checked(amount, currency, zero_allowed=True)


# -- shared ----------------------------------------------------------------------------------


def _check_person(actor: Principal) -> None:
    if actor.stored_user is None:
        raise NotAllowed("Disputes are resolved by the governance body's members, not by an API key.")


def _check_note(note: str) -> None:
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise InvalidInput(f"note is text of at most {MAX_NOTE} characters.", field="note")


def _locked(dispute: Dispute) -> Dispute:
    """The dispute's row, locked until the transaction ends (before any pool, statement or the ledger head)."""
    return Dispute.objects.select_for_update(of=("self",)).select_related(
        "statement__pool__consortium", "participant", "revaluation").get(pk=dispute.pk)


def _event(actor: Principal, dispute: Dispute, action: str, data: dict) -> None:
    DisputeEvent.objects.create(dispute=dispute, actor_label=actor.label, actor_user=actor.stored_user,
                                action=action, data=data)
    consortium = dispute.statement.pool.consortium
    audit_record(actor=actor, action=f"dispute.{action}", consortium=consortium, target=dispute,
                 data={"participant": dispute.participant.slug, **data})
    transaction.on_commit(partial(_notify, dispute_id=dispute.pk, action=action), robust=True)


_SUBJECTS = {
    "filed": "Your dispute was received",
    "reviewed": "Your dispute is under review",
    "revaluation_ordered": "A re-valuation was ordered for your dispute",
    "decided": "Your dispute was decided",
}


def _notify(*, dispute_id, action: str) -> None:
    """E-mail the disputing participant's users (after commit: only what really happened)."""
    dispute = Dispute.objects.select_related("statement__pool", "participant").get(pk=dispute_id)
    recipients = sorted({email for email in Membership.objects.filter(
        consortium_id=dispute.statement.pool.consortium_id, role=Role.PARTICIPANT, participant=dispute.participant,
    ).values_list("user__email", flat=True) if email})
    if not recipients:
        return
    pool = dispute.statement.pool
    lines = [f"Dispute {dispute.pk} on the {dispute.get_line_display().lower()} of your statement for "
             f"{pool.period} (version {dispute.statement.version}).",
             f"Status: {dispute.get_status_display()}.", f"Response deadline: {dispute.response_deadline:%Y-%m-%d}."]
    if action == "decided":
        lines.append(f"Outcome: {dispute.get_outcome_display()}." + (f" {dispute.decision_note}"
                                                                       if dispute.decision_note else ""))
        if dispute.revised_statement_id:
            lines.append(f"A revised statement (version {dispute.statement.version + 1}) was issued: "
                         f"{dispute.revised_statement_id}; the difference is {dispute.adjustment:f} {pool.currency}.")
    send_mail(f"[Fairshare] {_SUBJECTS[action]}", "\n".join(lines), None, recipients)
