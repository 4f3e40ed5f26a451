"""Write operations on tenancy: consortia, participants, memberships and API keys.

Each public function is one user action: it validates, writes in one transaction and
records an audit event. Refusals are ``core.errors`` service errors. The pages, the API,
the operator commands and the admin all write through these functions.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError as ModelValidationError
from django.db import transaction
from django.utils import timezone

from consortium.access import Principal
from consortium.audit import audit_record
from consortium.models import ApiKey, Consortium, Membership, Participant, Role, Scope, Transparency, hash_api_key
from core.errors import Conflict, InvalidInput


def _full_clean(obj) -> None:
    """The model's own field rules (slug format, lengths), as a service error."""
    try:
        obj.full_clean()
    except ModelValidationError as exc:
        raise InvalidInput.from_django(exc) from None


@transaction.atomic
def consortium_create(
    *, actor: Principal, slug: str, name: str, participants: Iterable[tuple[str, str]] = ()
) -> Consortium:
    """A new consortium with its participants, given as (slug, name) pairs."""
    if Consortium.objects.filter(slug=slug).exists():
        raise Conflict(f"A consortium with slug {slug!r} already exists.", field="slug")
    consortium = Consortium(slug=slug, name=name)
    _full_clean(consortium)
    consortium.save()
    audit_record(actor=actor, action="consortium.created", consortium=consortium, target=consortium,
                 data={"slug": slug, "name": name})
    for participant_slug, participant_name in participants:
        participant_create(actor=actor, consortium=consortium, slug=participant_slug, name=participant_name)
    return consortium


@transaction.atomic
def participant_create(*, actor: Principal, consortium: Consortium, slug: str, name: str) -> Participant:
    if consortium.participants.filter(slug=slug).exists():
        raise Conflict(f"Participant {slug!r} already exists in {consortium.slug}.", field="slug")
    participant = Participant(consortium=consortium, slug=slug, name=name)
    _full_clean(participant)
    participant.save()
    audit_record(actor=actor, action="participant.created", consortium=consortium, target=participant,
                 data={"slug": slug, "name": name})
    return participant


def _rename(*, actor: Principal, obj: Consortium | Participant, name: str, consortium: Consortium):
    """Give ``obj`` a new display name under a row lock; its slug never changes."""
    obj = type(obj).objects.select_for_update().get(pk=obj.pk)
    previous, obj.name = obj.name, name
    _full_clean(obj)
    if previous != name:
        obj.save(update_fields=["name"])
        audit_record(actor=actor, action=f"{obj._meta.model_name}.renamed", consortium=consortium, target=obj,
                     data={"slug": obj.slug, "from": previous, "to": name})
    return obj


@transaction.atomic
def consortium_rename(*, actor: Principal, consortium: Consortium, name: str) -> Consortium:
    return _rename(actor=actor, obj=consortium, name=name, consortium=consortium)


@transaction.atomic
def participant_rename(*, actor: Principal, participant: Participant, name: str) -> Participant:
    return _rename(actor=actor, obj=participant, name=name, consortium=participant.consortium)


@transaction.atomic
def participant_delete(*, actor: Principal, participant: Participant) -> None:
    """Delete a participant that nothing refers to yet (memberships, uploads and ledger
    entries protect it)."""
    audit_record(actor=actor, action="participant.deleted", consortium=participant.consortium, target=participant,
                 data={"slug": participant.slug, "name": participant.name})
    participant.delete()


@transaction.atomic
def membership_set(
    *, actor: Principal, user, consortium: Consortium, role: str, participant: Participant | None = None
) -> Membership:
    """Give ``user`` exactly one role in ``consortium``, replacing any earlier one."""
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.", field="role")
    if (role == Role.PARTICIPANT) != (participant is not None):
        raise InvalidInput("A participant membership, and only that, names its participant.", field="participant")
    if participant is not None and participant.consortium_id != consortium.id:
        raise InvalidInput("The participant belongs to another consortium.", field="participant")
    membership, created = Membership.objects.update_or_create(
        user=user, consortium=consortium, defaults={"role": role, "participant": participant}
    )
    audit_record(
        actor=actor,
        action="membership.created" if created else "membership.changed",
        consortium=consortium,
        target=membership,
        data={"user": user.get_username(), "role": role, "participant": participant.slug if participant else None},
    )
    return membership


@transaction.atomic
def membership_delete(*, actor: Principal, membership: Membership) -> None:
    audit_record(actor=actor, action="membership.deleted", consortium=membership.consortium, target=membership,
                 data={"user": membership.user.get_username(), "role": membership.role})
    membership.delete()


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    cleaned = sorted({scope.strip() for scope in scopes if scope.strip()})
    unknown = [scope for scope in cleaned if scope not in Scope.values]
    if unknown:
        raise InvalidInput(
            f"Unknown scope(s) {', '.join(unknown)}; expected some of {', '.join(Scope.values)}.", field="scopes"
        )
    if not cleaned:
        raise InvalidInput("An API key needs at least one scope.", field="scopes")
    return cleaned


@transaction.atomic
def api_key_create(
    *, actor: Principal, consortium: Consortium, name: str, scopes: Iterable[str]
) -> tuple[ApiKey, str]:
    """A new key and its secret value, which is returned here once and never stored."""
    name = name.strip()
    if not name:
        raise InvalidInput("An API key needs a name.", field="name")
    lookup_id, raw_key = ApiKey.generate()
    api_key = ApiKey.objects.create(
        consortium=consortium,
        name=name,
        lookup_id=lookup_id,
        key_hash=hash_api_key(raw_key),
        scopes=_clean_scopes(scopes),
        created_by=actor.stored_user,
    )
    audit_record(actor=actor, action="api_key.created", consortium=consortium, target=api_key,
                 data={"name": name, "prefix": api_key.prefix, "scopes": api_key.scopes})
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, actor: Principal, api_key: ApiKey) -> ApiKey:
    """Revoke a key; revoking a revoked key changes nothing and logs nothing."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_key.revoked", consortium=api_key.consortium, target=api_key,
                     data={"name": api_key.name, "prefix": api_key.prefix})
    return api_key


@transaction.atomic
def consortium_transparency_set(*, actor: Principal, consortium: Consortium, transparency: str) -> Consortium:
    """Change what participants see of each other; the old and new setting are audited."""
    if transparency not in Transparency.values:
        raise InvalidInput(
            f"Unknown setting {transparency!r}; expected one of {', '.join(Transparency.values)}.", field="transparency"
        )
    consortium = Consortium.objects.select_for_update().get(pk=consortium.pk)
    previous = consortium.transparency
    if previous != transparency:
        consortium.transparency = transparency
        consortium.save(update_fields=["transparency"])
        audit_record(actor=actor, action="consortium.transparency_changed", consortium=consortium, target=consortium,
                     data={"from": previous, "to": transparency})
    return consortium
