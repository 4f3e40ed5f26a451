"""``seed_demo [--seed N]``: the demo consortium end to end (what ``make demo`` runs).

Eight factories whose machine records follow the AI4I 2020 generation rules train a
failure predictor by FedAvg; the run is valued exactly, a EUR 250,000.00 pool is issued
and one factory disputes its statement (docs/demo.md tells the story).

Re-running it is safe: what exists is kept, what is missing is added. The demo dispute's
notification is kept in memory, not printed: the terminal shows the figures and the logins.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings

from consortium.audit import system_principal
from consortium.demo import DEMO_PASSWORD, STAFF_LOGINS, consortium_demo_seed
from incentives.demo import settlement_demo_seed
from ledger.currencies import money_text
from ledger.demo import ledger_demo_seed
from valuation.demo import valuation_demo_seed, valuation_demo_value


class Command(BaseCommand):
    help = ("Create the demo consortium (eight factories with AI4I 2020 machine records), its users (password "
            "'demo'), a FedAvg training run with its uploads and exact valuation, a ledger record with a signed "
            "checkpoint, and (once the valuation has succeeded) an issued revenue pool with one open dispute.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0, help="seed of every simulated number (default 0)")

    def handle(self, *args, seed, **options):
        if seed < 0:  # numpy's generators and the valuation service take non-negative seeds only
            raise CommandError("--seed must be zero or positive.")
        actor = system_principal()
        with transaction.atomic():
            consortium = consortium_demo_seed(actor=actor)
            run = valuation_demo_seed(consortium=consortium, actor=actor, seed=seed)
            valuation = valuation_demo_value(training_run=run, actor=actor, seed=seed)
            ledger_demo_seed(consortium=consortium, actor=actor)
        # The valuation ran at that commit without a broker; with one, the workers have it.
        valuation.refresh_from_db()
        # The demo dispute's e-mail to a made-up participant would only fill the terminal.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"), transaction.atomic():
            pool = settlement_demo_seed(consortium=consortium, valuation_run=valuation, actor=actor)
        self.stdout.write(f"Demo consortium '{consortium.slug}' ready; training run '{run.name}' (seed {seed}).")
        self.stdout.write(f"Valuation run {valuation.id}: {valuation.status}.")
        if pool is None:
            self.stdout.write("Revenue pool: not yet; run seed_demo again once the workers have finished the valuation.")
        else:
            amount = money_text(pool.amount, pool.currency)
            self.stdout.write(f"Revenue pool {pool.reference}: {amount} {pool.currency}, {pool.status}, "
                              "with one open dispute.")
            self._figures(valuation, pool)
        self.stdout.write(f"Logins (password '{DEMO_PASSWORD}'):")
        for email, role in STAFF_LOGINS:
            self.stdout.write(f"  {email:32} {role!s}")
        for participant in consortium.participants.all():
            self.stdout.write(f"  {participant.slug + '@demo.test':32} participant ({participant.name})")

    def _figures(self, valuation, pool) -> None:
        """Each factory's contribution value and payout, highest value first."""
        # The latest version of each statement: a decided dispute may have revised one.
        amounts = dict(pool.statements.order_by("participant__slug", "version").values_list("participant__slug", "amount"))
        self.stdout.write(f"  {'factory':20} {'value':>20} {'amount':>14}")
        for slug, value in valuation.scores.order_by("-value", "participant__slug").values_list(
                "participant__slug", "value"):
            amount = money_text(amounts[slug], pool.currency) if slug in amounts else "-"
            self.stdout.write(f"  {slug:20} {value:>20.6f} {amount:>14}")
