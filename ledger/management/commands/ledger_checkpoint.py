"""``ledger_checkpoint``: sign a checkpoint of the ledger now and print its note.

Keep the printed note somewhere the database administrator cannot reach: it is what
later proves that history was not rewritten.
"""

from django.core.management.base import BaseCommand, CommandError

from consortium.audit import audit_record, system_principal
from core.errors import ServiceError
from ledger.services import checkpoint_create


class Command(BaseCommand):
    help = "Create a signed checkpoint of the ledger (if it grew since the last one) and print it."

    def handle(self, *args, **options):
        try:
            checkpoint = checkpoint_create()
        except ServiceError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        audit_record(actor=system_principal(), action="ledger.checkpoint_requested", consortium=None,
                     target=checkpoint, data={"tree_size": checkpoint.tree_size})
        self.stdout.write(checkpoint.note, ending="")
