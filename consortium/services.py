"""Write operations on tenancy: consortia, participants, memberships and API keys.

Each public function is one user action: it validates, writes in one transaction and
records an audit event.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from consortium.access import Principal
from consortium.audit import audit_record
from consortium.models import ApiKey, Consortium, Membership, Participant, Role, Scope, Transparency, hash_api_key


@transaction.atomic
def consortium_create(
    *, actor: Principal, slug: str, name: str, participants: Iterable[tuple[str, str]] = ()
) -> Consortium:
    """A new consortium with its participants, given as (slug, name) pairs."""
    if Consortium.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A consortium with slug {slug!r} already exists."})
    consortium = Consortium(slug=slug, name=name)
    consortium.full_clean()
    consortium.save()
    audit_record(actor=actor, action="consortium.created", consortium=consortium, target=consortium,
                 data={"slug": slug, "name": name})
    for participant_slug, participant_name in participants:
        participant_create(actor=actor, consortium=consortium, slug=participant_slug, name=participant_name)
    return consortium


@transaction.atomic
def participant_create(*, actor: Principal, consortium: Consortium, slug: str, name: str) -> Participant:
    if consortium.participants.filter(slug=slug).exists():
        raise ValidationError({"slug": f"Participant {slug!r} already exists in {consortium.slug}."})
    participant = Participant(consortium=consortium, slug=slug, name=name)
    participant.full_clean()
    participant.save()
    audit_record(actor=actor, action="participant.created", consortium=consortium, target=participant,
                 data={"slug": slug, "name": name})
    return participant


@transaction.atomic
def membership_set(
    *, actor: Principal, user, consortium: Consortium, role: str, participant: Participant | None = None
) -> Membership:
    """Give ``user`` exactly one role in ``consortium``, replacing any earlier one."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; expected one of {', '.join(Role.values)}."})
    if (role == Role.PARTICIPANT) != (participant is not None):
        raise ValidationError({"participant": "A participant membership, and only that, names its participant."})
    if participant is not None and participant.consortium_id != consortium.id:
        raise ValidationError({"participant": "The participant belongs to another consortium."})
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
        raise ValidationError(
            {"scopes": f"Unknown scope(s) {', '.join(unknown)}; expected some of {', '.join(Scope.values)}."}
        )
    if not cleaned:
        raise ValidationError({"scopes": "An API key needs at least one scope."})
    return cleaned


@transaction.atomic
def api_key_create(
    *, actor: Principal, consortium: Consortium, name: str, scopes: Iterable[str]
) -> tuple[ApiKey, str]:
    """A new key and its secret value, which is returned here once and never stored."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "An API key needs a name."})
    lookup_id, raw_key = ApiKey.generate()
    api_key = ApiKey.objects.create(
        consortium=consortium,
        name=name,
        lookup_id=lookup_id,
        key_hash=hash_api_key(raw_key),
        scopes=_clean_scopes(scopes),
        created_by=actor.user if getattr(actor.user, "pk", None) else None,
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
        raise ValidationError(
            {"transparency": f"Unknown setting {transparency!r}; expected one of {', '.join(Transparency.values)}."}
        )
    consortium = Consortium.objects.select_for_update().get(pk=consortium.pk)
    previous = consortium.transparency
    if previous != transparency:
        consortium.transparency = transparency
        consortium.save(update_fields=["transparency"])
        audit_record(actor=actor, action="consortium.transparency_changed", consortium=consortium, target=consortium,
                     data={"from": previous, "to": transparency})
    return consortium
