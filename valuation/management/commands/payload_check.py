"""``payload_check [--repair] [--grace SECONDS]``: compare payload storage with the table.

Exit 0 when every ``Payload`` row has its file (with the bytes its sha256 names) and every
file under ``payloads/`` has a row; exit 1 otherwise, naming each problem. Staged files of
uploads in flight (younger than the grace period) are not problems.

``--repair`` publishes the staged bytes of a row that lost its file when the process died
between COMMIT and publishing, and deletes orphan files and stale staged files older than
the grace period. It never deletes or rewrites a file that a row names: a corrupt file or a
row whose bytes are nowhere is left for an operator (restore from a backup, or have the
coordinator upload the same bytes again, which restores the file). The exit status after a
repair says whether anything is still wrong. The logic is
``valuation.services.payload_storage.payload_storage_check``.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from core.errors import ServiceError
from valuation.services.payload_storage import payload_storage_check
from valuation.services.payloads import PAYLOAD_STAGING_GRACE


class Command(BaseCommand):
    help = "Report payload files without rows, rows without files and files that no longer hash to their name."

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true",
                            help="publish staged files that complete a row; delete orphans older than the grace")
        parser.add_argument("--grace", type=int, default=int(PAYLOAD_STAGING_GRACE.total_seconds()),
                            metavar="SECONDS",
                            help="files younger than this may belong to an upload in flight (default 3600)")
        parser.add_argument("--chunk-size", type=int, default=1000, help="rows read per query")

    def handle(self, *args, repair, grace, chunk_size, **options):
        try:
            report = payload_storage_check(repair=repair, grace=timedelta(seconds=grace), chunk_size=chunk_size)
        except ServiceError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        for name in report.published:
            self.stdout.write(f"published {name} from its staged copy")
        for name in report.deleted:
            self.stdout.write(f"deleted {name}")
        if report.in_flight:
            self.stdout.write(f"{len(report.in_flight)} staged file(s) younger than {grace} s: uploads in flight")
        remaining = report.remaining
        if remaining:
            for line in remaining:
                self.stdout.write(line)
            raise CommandError(f"payload storage check FAILED: {len(remaining)} problem(s), the first: {remaining[0]}",
                               returncode=1)
        self.stdout.write(f"payload storage consistent: {report.rows} row(s), {report.files} file(s)")
