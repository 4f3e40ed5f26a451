"""Demo tenancy: the demo consortium, its six factories and fleet operators, and its logins.

Called by ``seed_demo`` (the ``demo`` app). Idempotent: what exists is kept, what is missing
is added. The logins are documented in DESIGN.md section 7 and the README; password ``demo``.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from consortium.access import Principal
from consortium.models import Consortium, Membership, Role
from consortium.services import consortium_create, membership_set

DEMO_SLUG = "demo"
DEMO_PASSWORD = "demo"
DEMO_PARTICIPANTS = [
    ("aurora-press", "Aurora Press Works"),
    ("baltic-bearings", "Baltic Bearings"),
    ("castile-casting", "Castile Casting"),
    ("danube-drives", "Danube Drives"),
    ("elbe-extrusion", "Elbe Extrusion"),
    ("fjord-fleet", "Fjord Fleet Services"),
]
STAFF_LOGINS = [
    ("finance@demo.test", Role.FINANCE),
    ("finance2@demo.test", Role.FINANCE),
    ("governance@demo.test", Role.GOVERNANCE),
    ("auditor@demo.test", Role.AUDITOR),
]


def _demo_user(email: str):
    user, created = get_user_model().objects.get_or_create(username=email, defaults={"email": email})
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    return user


def _membership_ensure(*, actor: Principal, email: str, consortium: Consortium, role: str, participant=None) -> None:
    user = _demo_user(email)
    if not Membership.objects.filter(user=user, consortium=consortium).exists():
        membership_set(actor=actor, user=user, consortium=consortium, role=role, participant=participant)


def consortium_demo_seed(*, actor: Principal) -> Consortium:
    """The demo consortium with its participants, a user per staff role and per participant."""
    consortium = Consortium.objects.filter(slug=DEMO_SLUG).first() or consortium_create(
        actor=actor, slug=DEMO_SLUG, name="Demo Predictive Maintenance Consortium", participants=DEMO_PARTICIPANTS
    )
    for email, role in STAFF_LOGINS:
        _membership_ensure(actor=actor, email=email, consortium=consortium, role=role)
    for participant in consortium.participants.all():
        _membership_ensure(actor=actor, email=f"{participant.slug}@demo.test", consortium=consortium,
                           role=Role.PARTICIPANT, participant=participant)
    return consortium
