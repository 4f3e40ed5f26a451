"""``export_ledger --out FILE``: entries as JSON Lines plus the latest checkpoint and public key.

Check the file offline with ``python ledger/verify_export.py FILE --public-key KEY``.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from core.errors import ServiceError
from ledger.services.export import ledger_export


class Command(BaseCommand):
    help = "Write the ledger (entries, latest checkpoint, public key) to a JSON Lines file."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="the file to write ('-' for standard output)")

    def handle(self, *args, out, **options):
        try:
            if out == "-":
                summary = ledger_export(out=sys.stdout.buffer)
            else:
                with open(out, "wb") as handle:
                    summary = ledger_export(out=handle)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc}") from None
        except ServiceError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        checkpoint = f"checkpoint at size {summary.checkpoint_size}" if summary.checkpoint_size else "no checkpoint yet"
        self.stderr.write(f"exported {summary.entries} entries and the {checkpoint} to {out}")
