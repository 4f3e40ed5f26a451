"""``valuation_resend [--idle SECONDS] [--run ID ...] [--dry-run]``: send stalled valuation
runs on again.

A run whose messages were lost (a broker restarted without persistence, a message lost
with a machine past the visibility timeout) stays ``queued`` or ``running`` with no task
left for it. This sends the planning step of every queued or running run with nothing
new for ``--idle`` seconds (default 600: not started, or no chunk finished since):
planning re-sends the chunks not yet done, or the finishing step when none is left.
Every step is idempotent, so a run that was in fact still going only does some chunks
twice. Each re-send is audited. The logic is
``valuation.selectors.valuation_runs_stalled`` and
``valuation.services.valuation_run_resend``.
"""

import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from kombu.exceptions import OperationalError

from consortium.audit import system_principal
from valuation.selectors import valuation_runs_stalled
from valuation.services import valuation_run_resend


class Command(BaseCommand):
    help = "Send queued or running valuation runs that made no progress for a while on again."

    def add_arguments(self, parser):
        parser.add_argument("--idle", type=int, default=600, metavar="SECONDS",
                            help="only runs with nothing new for this long (default 600; 0: every unfinished run)")
        parser.add_argument("--run", action="append", dest="run_ids", metavar="ID",
                            help="only this run (repeatable)")
        parser.add_argument("--dry-run", action="store_true", help="list the runs, send nothing")

    def handle(self, *args, idle, run_ids, dry_run, **options):
        if idle < 0:
            raise CommandError("--idle is a number of seconds, 0 or more.")
        runs = list(valuation_runs_stalled(idle=timedelta(seconds=idle), run_ids=_uuids(run_ids)))
        actor = system_principal()
        for run in runs:
            line = f"{run.pk} {run.status}, last activity {run.last_activity:%Y-%m-%d %H:%M:%S %Z}"
            if dry_run:
                self.stdout.write(f"would resend {line}")
                continue
            try:
                valuation_run_resend(actor=actor, valuation_run=run)
            except OperationalError as exc:  # the broker: nothing more can be sent now
                raise CommandError(f"could not reach the broker ({exc}); resent before that: "
                                   f"{runs.index(run)} of {len(runs)} run(s)") from None
            self.stdout.write(f"resent {line}")
        self.stdout.write(f"{len(runs)} stalled run(s)" + (" (dry run: nothing sent)" if dry_run else ""))


def _uuids(values: list[str] | None) -> list[uuid.UUID] | None:
    if values is None:
        return None
    try:
        return [uuid.UUID(value) for value in values]
    except ValueError:
        raise CommandError(f"--run takes valuation run ids (UUIDs); got {', '.join(values)}") from None
