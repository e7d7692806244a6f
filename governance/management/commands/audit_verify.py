from django.core.management.base import BaseCommand, CommandError

from governance.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the whole audit hash chain; exit non-zero naming the first broken event."

    def handle(self, *args, **options):
        report = audit_chain_verify()
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(f"audit chain OK: {report.checked} events verified")
            )
            return
        brk = report.first_break
        raise CommandError(
            f"audit chain BROKEN at event sequence={brk.sequence} (id={brk.event_id}): {brk.reason}"
        )
