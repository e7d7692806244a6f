from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from governance.services import audit_archive_export


class Command(BaseCommand):
    help = (
        "Export the audit events not yet archived to a signed JSONL archive + manifest "
        "(AUDIT_ARCHIVE_DIR); check it offline with `audit_archive_verify`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--through", type=int, help="last sequence to archive (default: head)")
        parser.add_argument(
            "--dir", type=Path, help="output directory (default: AUDIT_ARCHIVE_DIR)"
        )

    def handle(self, *args, **options):
        try:
            anchor = audit_archive_export(
                through_sequence=options["through"], directory=options["dir"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if anchor is None:
            self.stdout.write("nothing new to archive")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"archived events {anchor.first_sequence}..{anchor.last_sequence} "
                f"({anchor.count}) to {anchor.file_name} (+ .manifest.json)"
            )
        )
