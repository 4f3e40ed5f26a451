"""Validation of entries before they are appended: everything that needs no database.

``entry_draft`` checks kind, reference, body, postings (accounts, currencies, minor units,
balance per currency) and the form of the participants, and returns an :class:`EntryDraft`
that knows its canonical bytes for any place in the chain. Whether the participant slugs
exist is checked by the append itself, in the same round trip as the write.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from django.utils import timezone

from consortium.models import Consortium, Participant
from core.errors import InvalidInput
from ledger import canonical
from ledger.accounts import InvalidAccount, account_parse, account_participant
from ledger.currencies import UnknownCurrency, amount_text, from_minor, minor_unit, to_minor
from ledger.models import EntryKind, ReferenceType

MAX_AMOUNT_MINOR = 10**15  # a quadrillion minor units: far above any pool, far below int64 sums
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_KINDS = frozenset(EntryKind.values)
_REFERENCE_TYPES = frozenset(ReferenceType.values)


@dataclass(frozen=True)
class EntryDraft:
    """A validated entry that has no place in the chain yet."""

    consortium: Consortium
    kind: str
    reference_type: str
    reference_id: str
    participants: tuple[str, ...]  # slugs, sorted; resolved to ids under the lock
    body: dict
    postings: list[tuple[str, str, int]]  # account, currency, amount in minor units
    actor: str
    idempotency_key: str | None

    @cached_property
    def template(self) -> tuple[bytes, bytes, bytes, bytes]:
        """The canonical bytes around what only the chain head knows.

        The entry is ``head + prev hex + middle + seq + after_seq + time + tail``: in RFC 8785
        key order the document ends with ``prev``, ``reference``, ``seq``, ``time``, ``v``, and
        those three values are plain ASCII (hex, digits, a timestamp), so splicing them into
        the canonical form of the rest gives exactly the canonical form of the whole.
        """
        document = self.document(seq=0, prev_hash=b"", time=timezone.now())
        document["time"] = ""
        reference = canonical.canonical_bytes(document["reference"])
        whole = canonical.canonical_bytes(document)
        ending = b',"prev":"","reference":' + reference + b',"seq":0,"time":"","v":1}'
        if not whole.endswith(ending):
            raise RuntimeError("the entry document no longer ends with prev, reference, seq, time, v")
        head = whole[: -len(ending)] + b',"prev":"'
        return head, b'","reference":' + reference + b',"seq":', b',"time":"', b'","v":1}'

    def canonical_at(self, *, seq: int, prev_hash: bytes, time_text: str) -> bytes:
        """This entry's canonical bytes as entry ``seq`` after ``prev_hash``, appended at ``time_text``."""
        head, middle, after_seq, tail = self.template
        return b"".join((head, prev_hash.hex().encode(), middle, str(seq).encode(), after_seq, time_text.encode(), tail))

    def content(self) -> dict:
        """What an idempotent retry must repeat, in the shape of canonical.content_of()."""
        document = self.document(seq=0, prev_hash=canonical.GENESIS_PREV, time=timezone.now())
        return canonical.content_of(json.loads(json.dumps(document)))

    def document(self, *, seq: int, prev_hash: bytes, time) -> dict:
        return canonical.entry_document(
            seq=seq,
            prev_hash=prev_hash,
            time=time,
            kind=self.kind,
            consortium_id=str(self.consortium.pk),
            reference_type=self.reference_type,
            reference_id=self.reference_id,
            participants=self.participants,
            actor=self.actor,
            idempotency_key=self.idempotency_key,
            body=self.body,
            postings=[(account, amount_text(minor, currency), currency) for account, currency, minor in self.postings],
        )


def entry_draft(
    *, consortium, kind, body, postings, actor, reference_type, reference_id, participants, idempotency_key
) -> EntryDraft:
    """Check an entry-to-be; raise InvalidInput naming every problem, field by field."""
    errors: dict[str, list[str]] = defaultdict(list)
    # Enum members (EntryKind.RECORD, ReferenceType.STATEMENT) become their plain values.
    kind = str(kind) if isinstance(kind, str) else kind
    reference_type = str(reference_type) if isinstance(reference_type, str) else reference_type
    if not isinstance(consortium, Consortium) or consortium.pk is None:
        raise InvalidInput("A saved Consortium is required.", field="consortium")
    if kind not in _KINDS:
        errors["kind"].append(f"Unknown kind {kind!r}; expected one of {', '.join(EntryKind.values)}.")
    if reference_type not in _REFERENCE_TYPES:
        errors["reference_type"].append(
            f"Unknown reference type {reference_type!r}; expected one of {', '.join(ReferenceType.values)}."
        )
    if not isinstance(reference_id, str) or not _REFERENCE_ID.match(reference_id):
        errors["reference_id"].append("A reference id is 1-64 letters, digits, '.', '_', ':' or '-'.")
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or not _IDEMPOTENCY_KEY.match(idempotency_key)):
        errors["idempotency_key"].append("An idempotency key is 1-200 printable ASCII characters without spaces.")
    actor_label = actor if isinstance(actor, str) else getattr(actor, "label", "")
    if not actor_label or len(actor_label) > 200:
        errors["actor"].append("An actor (a Principal or a label of at most 200 characters) is required.")
    if not isinstance(body, dict):
        errors["body"].append("The body is a JSON object (a dict).")
    else:
        try:
            canonical.check_json_value(body)
        except canonical.InvalidBody as exc:
            errors["body"].append(str(exc))
    lines = _postings(kind, postings, errors)
    slugs = _participant_slugs(consortium, participants, errors)
    slugs |= {slug for account, _, _ in lines if (slug := account_participant(account))}
    if errors:
        raise _invalid(errors)
    draft = EntryDraft(
        consortium=consortium, kind=kind, reference_type=reference_type, reference_id=reference_id,
        participants=tuple(sorted(slugs)), body=body, postings=lines, actor=actor_label, idempotency_key=idempotency_key,
    )
    size = sum(map(len, draft.template)) + 64 + 20 + 27  # hash, longest seq, time
    if size > canonical.MAX_CANONICAL_BYTES:
        raise InvalidInput(f"The entry would be {size} bytes; the limit is {canonical.MAX_CANONICAL_BYTES}.", field="body")
    return draft


def _invalid(errors: dict[str, list[str]]) -> InvalidInput:
    """One InvalidInput for everything found: the first message names its field, and
    ``errors`` holds every message by field when there is more than one."""
    field, messages = next(iter(errors.items()))
    if len(errors) == 1 and len(messages) == 1:
        return InvalidInput(messages[0], field=field)
    return InvalidInput(messages[0], field=field, errors={name: list(found) for name, found in errors.items()})


def _participant_slugs(consortium, participants, errors) -> set[str]:
    slugs = set()
    for item in participants or ():
        if isinstance(item, Participant):
            if item.consortium_id != consortium.pk:
                errors["participants"].append(f"Participant {item.slug} belongs to another consortium.")
            slugs.add(item.slug)
        elif isinstance(item, str):
            slugs.add(item)
        else:
            errors["participants"].append(f"A participant is a Participant or a slug, not {type(item).__name__}.")
    return slugs


def _postings(kind, postings, errors) -> list[tuple[str, str, int]]:
    given = list(postings or ())
    if kind == EntryKind.RECORD:
        if given:
            errors["postings"].append("A record has no postings; use kind 'transaction' to move money.")
        return []
    if kind != EntryKind.TRANSACTION:
        return []
    if len(given) < 2:
        errors["postings"].append(f"A journal transaction has at least two postings, not {len(given)}.")
    lines: list[tuple[str, str, int]] = []
    for position, item in enumerate(given):
        line = _posting(position, item, errors)
        if line is not None:
            lines.append(line)
    if len(lines) == len(given) and len(lines) >= 2:
        totals: dict[str, int] = defaultdict(int)
        for _, currency, minor in lines:
            totals[currency] += minor
        off = [f"{currency} by {from_minor(total, currency):+f}" for currency, total in sorted(totals.items()) if total]
        if off:
            errors["postings"].append(f"The postings do not balance: they are off {'; '.join(off)}.")
    return lines


def _posting(position: int, item, errors) -> tuple[str, str, int] | None:
    where = f"Posting {position}"
    if isinstance(item, dict):
        if set(item) != {"account", "amount", "currency"}:
            errors["postings"].append(f"{where}: expected the keys account, amount and currency.")
            return None
        account, amount, currency = item["account"], item["amount"], item["currency"]
    elif isinstance(item, (tuple, list)) and len(item) == 3:
        account, amount, currency = item
    else:
        errors["postings"].append(f"{where}: expected (account, amount, currency).")
        return None
    try:
        account_parse(account)
    except InvalidAccount as exc:
        errors["postings"].append(f"{where}: {exc}.")
        return None
    try:
        minor_unit(currency)
    except UnknownCurrency as exc:
        errors["postings"].append(f"{where}: {exc}.")
        return None
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        errors["postings"].append(f"{where}: the amount is a Decimal, not {type(amount).__name__}.")
        return None
    amount = Decimal(amount)
    if not amount.is_finite():
        errors["postings"].append(f"{where}: the amount {amount} is not a finite number.")
        return None
    try:
        minor = to_minor(amount, currency)
    except ValueError:
        errors["postings"].append(
            f"{where}: {amount} {currency} has more decimals than the currency's {minor_unit(currency)}."
        )
        return None
    if minor == 0:
        errors["postings"].append(f"{where}: a posting of zero moves nothing.")
        return None
    if abs(minor) > MAX_AMOUNT_MINOR:
        errors["postings"].append(f"{where}: {amount} {currency} is beyond the ledger's limit.")
        return None
    return account, currency, minor
