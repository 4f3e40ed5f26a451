"""``seed_demo [--seed N]``: the demo consortium end to end (what ``make demo`` runs).

Re-running it is safe: what exists is kept, what is missing is added.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from consortium.audit import system_principal
from consortium.models import Consortium, Membership, Participant
from consortium.services import consortium_create, membership_set
from ledger.demo import ledger_seed_demo
from valuation.demo import demo_training_run_seed

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
    ("finance@demo.test", "finance"),
    ("finance2@demo.test", "finance"),
    ("governance@demo.test", "governance"),
    ("auditor@demo.test", "auditor"),
]


def _user(email: str):
    user, created = get_user_model().objects.get_or_create(username=email, defaults={"email": email})
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    return user


class Command(BaseCommand):
    help = ("Create the demo consortium, its users (password 'demo'), a training run with uploads, "
            "and the first ledger entries with a signed checkpoint.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0, help="seed of every simulated number (default 0)")

    @transaction.atomic
    def handle(self, *args, seed, **options):
        actor = system_principal()
        consortium = Consortium.objects.filter(slug=DEMO_SLUG).first() or consortium_create(
            actor=actor, slug=DEMO_SLUG, name="Demo Predictive Maintenance Consortium", participants=DEMO_PARTICIPANTS
        )
        for email, role in STAFF_LOGINS:
            user = _user(email)
            if not Membership.objects.filter(user=user, consortium=consortium).exists():
                membership_set(actor=actor, user=user, consortium=consortium, role=role)
        for participant in Participant.objects.filter(consortium=consortium):
            user = _user(f"{participant.slug}@demo.test")
            if not Membership.objects.filter(user=user, consortium=consortium).exists():
                membership_set(actor=actor, user=user, consortium=consortium, role="participant",
                               participant=participant)
        run = demo_training_run_seed(consortium=consortium, actor=actor, seed=seed)
        ledger_seed_demo(consortium=consortium, actor=actor)
        self.stdout.write(f"Demo consortium '{consortium.slug}' ready; training run '{run.name}' (seed {seed}).")
        self.stdout.write(f"Logins (password '{DEMO_PASSWORD}'):")
        for email, role in STAFF_LOGINS:
            self.stdout.write(f"  {email:32} {role}")
        for participant in Participant.objects.filter(consortium=consortium):
            self.stdout.write(f"  {participant.slug + '@demo.test':32} participant ({participant.name})")
