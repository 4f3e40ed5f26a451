"""``verify_ledger [--checkpoint NOTE_FILE ...]``: recompute the ledger; exit 0 intact, 1 not.

On failure it names the first bad entry and what is wrong with it. Pass checkpoint notes
that were kept outside the database (by participants, auditors, a witness) with
``--checkpoint``: only they reveal a rewrite of the whole ledger, stored checkpoints included.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import ServiceError
from ledger.services.verify import ledger_verify


class Command(BaseCommand):
    help = "Recompute every ledger hash, the chain, balances, Merkle nodes and checkpoints."

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint", action="append", default=[], metavar="NOTE_FILE",
            help="a checkpoint note kept outside the database (repeatable)",
        )
        parser.add_argument("--chunk-size", type=int, default=2000, help="entries read per query")

    def handle(self, *args, checkpoint, chunk_size, **options):
        held = []
        for name in checkpoint:
            try:
                held.append((name, Path(name).read_text(encoding="utf-8")))
            except OSError as exc:
                raise CommandError(f"cannot read {name}: {exc}") from None
        try:
            report = ledger_verify(held_notes=held, chunk_size=chunk_size)
        except ServiceError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if not report.ok:
            raise CommandError(f"ledger verification FAILED: {report.problem}", returncode=1)
        self.stdout.write(
            f"ledger intact: {report.entries} entries, root {report.root.hex()}, "
            f"{report.checkpoints} checkpoint(s) verified"
        )
