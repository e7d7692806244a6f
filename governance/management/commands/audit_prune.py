from django.core.management.base import BaseCommand, CommandError

from governance.services import audit_prune


class Command(BaseCommand):
    help = (
        "Delete audit events older than AUDIT_RETENTION_DAYS that a verified archive already "
        "holds (run `audit_archive` first). Younger events are never deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-days", type=int, help="at least AUDIT_RETENTION_DAYS (the default)"
        )
        parser.add_argument("--dry-run", action="store_true", help="report, delete nothing")

    def handle(self, *args, **options):
        try:
            result = audit_prune(
                older_than_days=options["older_than_days"], dry_run=options["dry_run"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(
            f"{verb} {result.deleted} events (through sequence {result.through_sequence}; "
            f"cut-off {result.cutoff:%Y-%m-%d %H:%M} UTC)"
        )
