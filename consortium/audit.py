"""The audit log: every change made by a user or an API key, with who, when and what.

Call :func:`audit_record` inside the same transaction as the change it describes, so a
change and its audit row are written together or not at all.
"""

from __future__ import annotations

from django.db import models

from consortium.access import Principal
from consortium.models import AuditEvent, Consortium


def audit_record(
    *,
    actor: Principal,
    action: str,
    consortium: Consortium | None,
    target: models.Model | None = None,
    data: dict | None = None,
) -> AuditEvent:
    """Append one audit event; ``action`` is a dotted name such as ``api_key.created``."""
    return AuditEvent.objects.create(
        consortium=consortium,
        actor_user=actor.stored_user,
        actor_api_key=actor.api_key,
        actor_label=actor.label,
        action=action,
        object_type=target._meta.label_lower if target is not None else "",
        object_id=str(target.pk) if target is not None else "",
        data=data or {},
    )


def system_principal() -> Principal:
    """The actor for operator commands run from a shell (no signed-in user)."""
    return _SystemPrincipal()


class _SystemPrincipal(Principal):
    @property
    def label(self) -> str:
        return "system:operator-command"
