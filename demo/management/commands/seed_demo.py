"""``seed_demo [--seed N]``: the demo consortium end to end (what ``make demo`` runs).

Re-running it is safe: what exists is kept, what is missing is added.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from consortium.audit import system_principal
from consortium.demo import DEMO_PASSWORD, STAFF_LOGINS, consortium_demo_seed
from ledger.demo import ledger_demo_seed
from valuation.demo import valuation_demo_seed, valuation_demo_value


class Command(BaseCommand):
    help = ("Create the demo consortium, its users (password 'demo'), a training run with uploads and its "
            "valuation, and the first ledger entries with a signed checkpoint.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0, help="seed of every simulated number (default 0)")

    @transaction.atomic
    def handle(self, *args, seed, **options):
        actor = system_principal()
        consortium = consortium_demo_seed(actor=actor)
        run = valuation_demo_seed(consortium=consortium, actor=actor, seed=seed)
        valuation = valuation_demo_value(training_run=run, actor=actor, seed=seed)
        ledger_demo_seed(consortium=consortium, actor=actor)
        self.stdout.write(f"Demo consortium '{consortium.slug}' ready; training run '{run.name}' (seed {seed}).")
        self.stdout.write(f"Valuation run {valuation.id}: computed when this command commits (by the workers, "
                          "or in-process without a broker).")
        self.stdout.write(f"Logins (password '{DEMO_PASSWORD}'):")
        for email, role in STAFF_LOGINS:
            self.stdout.write(f"  {email:32} {role!s}")
        for participant in consortium.participants.all():
            self.stdout.write(f"  {participant.slug + '@demo.test':32} participant ({participant.name})")
