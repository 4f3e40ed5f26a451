"""``export_ledger --out FILE [--consortium SLUG [--participant SLUG]]``: entries as JSON
Lines plus the latest checkpoint and public key; scoped to one consortium (or one of its
participants), every other entry is written as its leaf hash only.

Check the file offline with ``python ledger/verify_export.py FILE --public-key KEY``.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from consortium.models import Consortium
from core.errors import ServiceError
from ledger.services.export import ledger_export


class Command(BaseCommand):
    help = "Write the ledger (entries, latest checkpoint, public key) to a JSON Lines file."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="the file to write ('-' for standard output)")
        parser.add_argument("--consortium", help="only this consortium's entries in full (others as leaf hashes)")
        parser.add_argument("--participant", help="with --consortium: only the entries concerning this participant")

    def handle(self, *args, out, consortium, participant, **options):
        scope = _scope(consortium, participant)
        try:
            if out == "-":
                summary = ledger_export(out=sys.stdout.buffer, **scope)
            else:
                with open(out, "wb") as handle:
                    summary = ledger_export(out=handle, **scope)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc}") from None
        except ServiceError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        checkpoint = f"checkpoint at size {summary.checkpoint_size}" if summary.checkpoint_size else "no checkpoint yet"
        self.stderr.write(f"exported {summary.entries} entries and the {checkpoint} to {out}")


def _scope(consortium_slug: str | None, participant_slug: str | None) -> dict:
    if participant_slug and not consortium_slug:
        raise CommandError("--participant needs --consortium")
    if not consortium_slug:
        return {}
    consortium = Consortium.objects.filter(slug=consortium_slug).first()
    if consortium is None:
        raise CommandError(f"no consortium {consortium_slug!r}")
    scope = {"consortium": consortium}
    if participant_slug:
        scope["participant"] = consortium.participants.filter(slug=participant_slug).first()
        if scope["participant"] is None:
            raise CommandError(f"consortium {consortium_slug!r} has no participant {participant_slug!r}")
    return scope
