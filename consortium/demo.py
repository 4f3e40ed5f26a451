"""Demo tenancy: the demo consortium, its eight factories, and its logins.

Called by ``seed_demo`` (the ``demo`` app). Idempotent: what exists is kept, what is missing
is added. The logins are documented in DESIGN.md section 7 and the README; password ``demo``.
What each factory's data is like (and what is wrong with three of them) is the valuation
demo's story, in ``valuation/demo_consortium.py``; docs/demo.md tells it.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from consortium.access import Principal
from consortium.models import Consortium, Membership, Role
from consortium.services import consortium_create, membership_set, participant_create

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Predictive Maintenance Consortium"
DEMO_PASSWORD = "demo"
# (slug, name): milling and machining plants that pool failure predictions for their spindles.
DEMO_PARTICIPANTS = [
    ("aurora-press", "Aurora Press Works"),
    ("baltic-bearings", "Baltic Bearings"),
    ("castile-casting", "Castile Casting"),
    ("danube-drives", "Danube Drives"),
    ("elbe-extrusion", "Elbe Extrusion"),
    ("fjord-forge", "Fjord Forge"),
    ("garonne-gears", "Garonne Gearworks"),
    ("hansa-hydraulics", "Hansa Hydraulics"),
]
STAFF_LOGINS = [
    ("finance@demo.test", Role.FINANCE),
    ("finance2@demo.test", Role.FINANCE),
    ("governance@demo.test", Role.GOVERNANCE),
    ("auditor@demo.test", Role.AUDITOR),
]


@cache
def _demo_password_hash() -> str:
    # One hash for every demo login: the hasher is slow on purpose (0.4 s each, most of
    # seed_demo's time for twelve logins), and these passwords are public anyway.
    return make_password(DEMO_PASSWORD)


def _demo_user(email: str):
    user, created = get_user_model().objects.get_or_create(username=email, defaults={"email": email})
    if created:
        user.password = _demo_password_hash()
        user.save(update_fields=["password"])
    return user


def demo_principal(email: str) -> Principal:
    """A demo login as the acting user, for the steps a person takes in the demo story
    (governance uploads its validation set, finance approves, a factory disputes)."""
    return Principal(user=get_user_model().objects.get(username=email))


def _membership_ensure(*, actor: Principal, email: str, consortium: Consortium, role: str, participant=None) -> None:
    user = _demo_user(email)
    if not Membership.objects.filter(user=user, consortium=consortium).exists():
        membership_set(actor=actor, user=user, consortium=consortium, role=role, participant=participant)


def consortium_demo_seed(*, actor: Principal) -> Consortium:
    """The demo consortium with its participants, a user per staff role and per participant."""
    consortium = Consortium.objects.filter(slug=DEMO_SLUG).first() or consortium_create(
        actor=actor, slug=DEMO_SLUG, name=DEMO_NAME, participants=DEMO_PARTICIPANTS
    )
    # A database seeded by an earlier version of the demo gets the factories it lacks.
    existing = set(consortium.participants.values_list("slug", flat=True))
    for slug, name in DEMO_PARTICIPANTS:
        if slug not in existing:
            participant_create(actor=actor, consortium=consortium, slug=slug, name=name)
    for email, role in STAFF_LOGINS:
        _membership_ensure(actor=actor, email=email, consortium=consortium, role=role)
    for participant in consortium.participants.all():
        _membership_ensure(actor=actor, email=f"{participant.slug}@demo.test", consortium=consortium,
                           role=Role.PARTICIPANT, participant=participant)
    return consortium
