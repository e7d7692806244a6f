from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from governance.audit import archives_verify


class Command(BaseCommand):
    help = (
        "Check audit archives offline: needs only AUDIT_HMAC_KEYS, never the database. "
        "FILE is an archive's .manifest.json or .jsonl; several must join end to end."
    )
    requires_system_checks: list = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path, metavar="FILE")

    def handle(self, *args, **options):
        report = archives_verify(options["files"], settings.AUDIT_HMAC_KEYS)
        if not report.ok:
            raise CommandError(f"archive BROKEN: {report.problem}")
        unsigned = f" ({report.legacy} unsigned legacy events: links only)" if report.legacy else ""
        self.stdout.write(self.style.SUCCESS(f"archive OK: {report.checked} events{unsigned}"))
